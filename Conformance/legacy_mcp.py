"""A Galley-like legacy MCP config source (istio.mcp.v1alpha1, flavour B) for Conformance, in Python.

specs/mcp-protocol.md §2.1 (source side, as Istio's `pkg/mcp/source` behaves) and §2.2 (the source
dialing a `ResourceSink`). The protos are SwiftPilot's `Protos/istio/mcp/v1alpha1/mcp.proto`, compiled
at test time with grpcio-tools (`google/rpc/status.proto` is written into a temporary include dir;
its Python module comes from the venv). Nothing here reuses SwiftPilot code.

Source behaviour per stream and collection:
* nonce = per-stream decimal counter ("1", "2", ...);
* a request is processed only if its nonce is empty or the pending response's nonce, others are stale;
* a collection the source does not serve terminates the stream with INVALID_ARGUMENT;
* a response is incremental only if the latest request for the collection asked `incremental=true`
  and the stream's nonce counter is not 0; the delta is computed against the ACKed name->version map;
* `initial_resource_versions` is IGNORED (the ACKed map of a new stream starts empty), as Istio's source.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.resources
import itertools
import queue
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from harness import ROOT, free_port
from mcp_server import KINDS, body_any, istio_protos, message_class

TRIGGER_COLLECTION = "$triggerCollection"
PLURALS = {"ServiceEntry": "serviceentries", "WorkloadEntry": "workloadentries", "WorkloadGroup": "workloadgroups",
           "DestinationRule": "destinationrules", "Gateway": "gateways", "VirtualService": "virtualservices",
           "Sidecar": "sidecars", "EnvoyFilter": "envoyfilters"}
COLLECTIONS = {kind: f"istio/networking/v1alpha3/{plural}" for kind, plural in PLURALS.items()}
ALL_COLLECTIONS = frozenset(COLLECTIONS.values())

_STATUS_PROTO = """syntax = "proto3";
package google.rpc;
import "google/protobuf/any.proto";
message Status {
  int32 code = 1;
  string message = 2;
  repeated google.protobuf.Any details = 3;
}
"""


@functools.lru_cache(maxsize=1)
def mcp_modules():
    """(mcp_pb2, mcp_pb2_grpc) compiled from Protos/istio/mcp/v1alpha1/mcp.proto."""
    from grpc_tools import protoc

    out = istio_protos()  # resource.proto / metadata.proto already compiled there (and on sys.path)
    include = Path(tempfile.mkdtemp(prefix="rpc-status-"))
    (include / "google/rpc").mkdir(parents=True)
    (include / "google/rpc/status.proto").write_text(_STATUS_PROTO)
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    code = protoc.main(["grpc_tools.protoc", f"-I{ROOT / 'Protos'}", f"-I{include}", f"-I{well_known}",
                        f"--python_out={out}", f"--grpc_python_out={out}", "istio/mcp/v1alpha1/mcp.proto"])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) compiling mcp.proto")
    importlib.invalidate_caches()
    return (importlib.import_module("istio.mcp.v1alpha1.mcp_pb2"),
            importlib.import_module("istio.mcp.v1alpha1.mcp_pb2_grpc"))


def resource_message(kind: str, obj: dict, version: str):
    """An `istio.mcp.v1alpha1.Resource` for an Istio object dict (name `ns/name`)."""
    metadata = obj.get("metadata", {})
    name = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
    resource = message_class("istio.mcp.v1alpha1.Resource")()
    resource.metadata.name = name
    resource.metadata.version = version
    resource.metadata.labels.update(metadata.get("labels", {}))
    resource.metadata.annotations.update(metadata.get("annotations", {}))
    resource.metadata.create_time.GetCurrentTime()
    resource.body.CopyFrom(body_any(kind, obj.get("spec", {})))
    return name, resource


def undecodable_resource(kind: str, name: str, version: str):
    """A proper envelope whose body claims `kind` but holds truncated protobuf bytes."""
    from google.protobuf import any_pb2
    resource = message_class("istio.mcp.v1alpha1.Resource")()
    resource.metadata.name = name
    resource.metadata.version = version
    resource.body.CopyFrom(any_pb2.Any(type_url=f"type.googleapis.com/istio.networking.v1alpha3.{kind}",
                                       value=b"\x0a\xff\x01ab"))
    return name, resource


@dataclasses.dataclass
class Request:
    stream: int
    time: float
    collection: str
    nonce: str
    incremental: bool
    initial_resource_versions: dict
    has_sink_node: bool
    sink_node_id: str
    error_code: int | None
    error_message: str

    @property
    def is_nack(self) -> bool:
        return self.error_code is not None


@dataclasses.dataclass
class Response:
    stream: int
    time: float
    collection: str
    nonce: str
    incremental: bool
    system_version_info: str
    names: list[str]
    removed: list[str]


class _Session:
    """The source side of one stream (whichever side dialed)."""

    def __init__(self, owner: "LegacySource", number: int):
        self.owner = owner
        self.number = number
        self.outgoing: queue.Queue = queue.Queue()
        self.nonces = itertools.count(1)
        self.sent = 0
        self.pending: dict[str, str] = {}           # collection -> nonce of the response in flight
        self.pending_map: dict[str, dict] = {}      # collection -> name->version of the pending full/delta result
        self.pending_version: dict[str, str] = {}   # collection -> generation of the pending response
        self.acked: dict[str, dict[str, str]] = {}  # collection -> ACKed name->version
        self.incremental: dict[str, bool] = {}      # collection -> latest request asked incremental
        self.sink_has: dict[str, str] = {}          # collection -> system version the sink has (ACK or NACK)
        self.watching: set[str] = set()             # collections with an open watch (nothing in flight)
        self.error: tuple | None = None             # (code, details) terminating the stream

    def receive(self, request):
        owner = self.owner
        mcp_pb2, _ = mcp_modules()
        error = request.error_detail if request.HasField("error_detail") else None
        with owner._lock:
            owner.requests.append(Request(self.number, time.monotonic(), request.collection, request.response_nonce,
                                          request.incremental, dict(request.initial_resource_versions),
                                          request.HasField("sink_node"), request.sink_node.id,
                                          error.code if error is not None else None,
                                          error.message if error is not None else ""))
            collection, nonce = request.collection, request.response_nonce
            if collection == TRIGGER_COLLECTION:
                owner._note(f"stream {self.number}: trigger answered (code {error.code if error else None}), dropped")
                return
            if collection not in owner.served:
                owner._note(f"stream {self.number}: unsupported collection {collection}: terminating")
                self.error = (grpc.StatusCode.INVALID_ARGUMENT, f"unsupported collection {collection!r}")
                self.outgoing.put(None)
                return
            if nonce and nonce != self.pending.get(collection):
                owner._note(f"stream {self.number}: STALE {collection} nonce {nonce!r} ignored")
                return
            self.incremental[collection] = request.incremental
            if nonce:
                if error is None:
                    self.acked[collection] = self.pending_map.pop(collection)
                    owner._note(f"stream {self.number}: ACK {collection} {nonce}")
                else:
                    self.pending_map.pop(collection, None)
                    owner._note(f"stream {self.number}: NACK {collection} {nonce}: {error.message}")
                self.sink_has[collection] = self.pending_version.pop(collection)
                del self.pending[collection]
            else:
                owner._note(f"stream {self.number}: new watch {collection} (incremental={request.incremental}, "
                            f"initial versions {dict(request.initial_resource_versions)} ignored)")
                self.sink_has.pop(collection, None)
                self.acked.setdefault(collection, {})
            self.watching.add(collection)
            self.push(collection)

    def push(self, collection: str):
        """Answers an open watch if the sink does not have the current version (lock held)."""
        owner = self.owner
        if collection not in self.watching or self.sink_has.get(collection) == owner._versions[collection]:
            return
        mcp_pb2, _ = mcp_modules()
        store = owner._store[collection]
        current = {name: resource.metadata.version for name, resource in store.items()}
        incremental = self.incremental.get(collection, False) and self.sent != 0
        if incremental:
            acked = self.acked.get(collection, {})
            names = sorted(n for n, v in current.items() if acked.get(n) != v)
            removed = sorted(n for n in acked if n not in current)
        else:
            names, removed = sorted(current), []
        nonce = str(next(self.nonces))
        self.sent += 1
        response = mcp_pb2.Resources(system_version_info=f"{collection}/{owner._versions[collection]}",
                                     collection=collection, resources=[store[n] for n in names],
                                     removed_resources=removed, nonce=nonce, incremental=incremental)
        self.watching.discard(collection)
        self.pending[collection] = nonce
        self.pending_map[collection] = current
        self.pending_version[collection] = owner._versions[collection]
        owner.responses.append(Response(self.number, time.monotonic(), collection, nonce, incremental,
                                        response.system_version_info, names, removed))
        self.outgoing.put(response)


class LegacySource:
    """A Galley-like `istio.mcp.v1alpha1.ResourceSource` on 127.0.0.1 (``start()``), or a source that
    dials a `ResourceSink` (``dial(address)``). ``served``: the collections it knows (others kill the stream)."""

    def __init__(self, served=ALL_COLLECTIONS, port: int | None = None):
        mcp_modules()
        self.served = frozenset(served)
        self.port = port or free_port()
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.log: list[str] = []
        self.stream_errors: list[str] = []   # (dial mode) how the dialed streams ended
        self._lock = threading.RLock()
        self._store: dict[str, dict] = {c: {} for c in self.served}
        self._versions: dict[str, str] = {c: "1" for c in self.served}
        self._generation = itertools.count(2)
        self._resource_versions = itertools.count(100)
        self._sessions: dict[int, _Session] = {}
        self._numbers = itertools.count(1)
        self._server: grpc.Server | None = None
        self._dialing: list = []

    @property
    def address(self) -> str:
        return f"mcp://127.0.0.1:{self.port}"

    # MARK: content

    def set(self, kind: str, objects: list[dict]):
        with self._lock:
            collection = COLLECTIONS[kind]
            self._store[collection] = dict(resource_message(kind, o, str(next(self._resource_versions))) for o in objects)
            self._changed(collection)

    def upsert(self, kind: str, obj: dict):
        with self._lock:
            collection = COLLECTIONS[kind]
            name, resource = resource_message(kind, obj, str(next(self._resource_versions)))
            self._store[collection][name] = resource
            self._changed(collection)

    def put_undecodable(self, kind: str, name: str):
        with self._lock:
            collection = COLLECTIONS[kind]
            name, resource = undecodable_resource(kind, name, str(next(self._resource_versions)))
            self._store[collection][name] = resource
            self._changed(collection)

    def delete(self, kind: str, name: str):
        with self._lock:
            collection = COLLECTIONS[kind]
            del self._store[collection][name]
            self._changed(collection)

    def _changed(self, collection: str):
        self._versions[collection] = str(next(self._generation))
        self._note(f"{collection} changed: generation {self._versions[collection]}")
        for session in list(self._sessions.values()):
            session.push(collection)

    # MARK: records

    def requests_on(self, stream: int) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.stream == stream]

    def responses_on(self, stream: int) -> list[Response]:
        with self._lock:
            return [r for r in self.responses if r.stream == stream]

    def streams_seen(self) -> list[int]:
        with self._lock:
            return sorted({r.stream for r in self.requests})

    def replies_to(self, response: Response) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.stream == response.stream and r.collection == response.collection
                    and r.nonce == response.nonce]

    def unanswered(self) -> list[Response]:
        with self._lock:
            return [r for r in self.responses if not self.replies_to(r)]

    def dump(self) -> str:
        with self._lock:
            return "\n".join([f"--- legacy MCP source on {self.port}: log", *self.log, "--- requests",
                              *[f"  {r}" for r in self.requests], "--- responses", *[f"  {r}" for r in self.responses]])

    def _note(self, text: str):
        with self._lock:
            self.log.append(f"{time.monotonic():.3f} {text}")

    def _open_session(self) -> _Session:
        with self._lock:
            session = _Session(self, next(self._numbers))
            self._sessions[session.number] = session
        return session

    def _close_session(self, session: _Session):
        with self._lock:
            self._sessions.pop(session.number, None)
        self._note(f"stream {session.number} closed")

    # MARK: server mode (the sink dials us)

    def start(self) -> "LegacySource":
        _, mcp_grpc = mcp_modules()
        owner = self

        class Servicer(mcp_grpc.ResourceSourceServicer):
            def EstablishResourceStream(self, request_iterator, context):
                session = owner._open_session()
                owner._note(f"stream {session.number} opened by {context.peer()}")
                context.add_callback(lambda: session.outgoing.put(None))

                def read():
                    try:
                        for request in request_iterator:
                            session.receive(request)
                    except Exception as error:  # noqa: BLE001
                        owner._note(f"stream {session.number} read ended: {type(error).__name__}")
                    finally:
                        session.outgoing.put(None)

                threading.Thread(target=read, daemon=True).start()
                try:
                    while True:
                        response = session.outgoing.get()
                        if response is None:
                            break
                        yield response
                    if session.error is not None:
                        context.abort(*session.error)
                finally:
                    owner._close_session(session)

        server = grpc.server(ThreadPoolExecutor(max_workers=16, thread_name_prefix="legacy-mcp"))
        mcp_grpc.add_ResourceSourceServicer_to_server(Servicer(), server)
        if server.add_insecure_port(f"127.0.0.1:{self.port}") != self.port:
            raise RuntimeError(f"could not bind 127.0.0.1:{self.port}")
        server.start()
        self._server = server
        self._note(f"ResourceSource listening on 127.0.0.1:{self.port}")
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0).wait(5)
        for channel, call in self._dialing:
            call.cancel()
            channel.close()
        self._dialing.clear()
        with self._lock:
            for session in self._sessions.values():
                session.outgoing.put(None)
            self._sessions.clear()
        self._note("stopped")

    # MARK: dial mode (we dial a ResourceSink, §2.2)

    def dial(self, target: str, timeout: float = 60) -> _Session:
        """Opens one stream to `target`'s ResourceSink, sends the trigger first, then serves requests."""
        mcp_pb2, mcp_grpc = mcp_modules()
        session = self._open_session()
        session.outgoing.put(mcp_pb2.Resources(collection=TRIGGER_COLLECTION))
        channel = grpc.insecure_channel(target)
        stub = mcp_grpc.ResourceSinkStub(channel)

        def requests():
            while True:
                item = session.outgoing.get()
                if item is None:
                    return
                yield item

        call = stub.EstablishResourceStream(requests(), timeout=timeout)
        self._dialing.append((channel, call))

        def read():
            try:
                for request in call:
                    session.receive(request)
                self.stream_errors.append("EOF")
            except grpc.RpcError as error:
                self.stream_errors.append(f"{error.code()}: {error.details()}")
            finally:
                session.outgoing.put(None)
                self._close_session(session)

        threading.Thread(target=read, daemon=True).start()
        self._note(f"stream {session.number}: dialed ResourceSink {target}")
        return session
