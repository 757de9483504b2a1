"""An independent MCP-over-xDS **server** (config source) for Conformance, written in Python.

It speaks `envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources`
(official stubs from PyPI `xds-protos`), each resource an `istio.mcp.v1alpha1.Resource` in an
`Any`, bodies built from Istio YAML written as Python dicts with `json_format.ParseDict` into
messages compiled at test time from SwiftPilot's own `Protos/istio/**` (grpcio-tools' protoc).
Nothing here reuses SwiftPilot code.

Two behaviours (specs/mcp-protocol.md §2.4, table "Server side reference behaviours"):

* ``istiod``: answers every GVK (`networking.istio.io/<v1|v1beta1|v1alpha3>/<Kind>` from its store,
  anything else with an empty list), `core/v1alpha1/MeshConfig` with a bare MeshConfig `Any`;
  random nonces, `version_info` = push version (`<RFC3339>/<n>`), metadata name `ns/name`,
  create_time, version = resourceVersion-like counter, labels, annotations. A nonce it never
  issued on the stream is a fresh subscription (istiod's client sends a Go timestamp there);
  a nonce it issued but not the latest is stale and ignored; every change is pushed to every
  subscribed type of every stream.
* ``nacos``: ServiceEntry content only, always under `networking.istio.io/v1alpha3/ServiceEntry`
  (Nacos' hard-coded type URL; a request for ServiceEntry under another networking version is
  answered under that type URL too, see ``MCPServer.__init__``); every other type an empty list;
  `core/v1alpha1/MeshConfig` never answered; names `<ns>/<svc>.<group>.<ns>`, version = revision,
  label `registryType=nacos`, annotation `virtual=1`; a NACK is only logged.

Every request received and every response sent is recorded (``requests`` / ``responses``) so
tests can check the sink's ACK/NACK behaviour.
"""
from __future__ import annotations

import atexit
import dataclasses
import datetime
import functools
import importlib
import importlib.resources
import itertools
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory, timestamp_pb2

from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from harness import ROOT, free_port

MESH_CONFIG_TYPE = "core/v1alpha1/MeshConfig"
RESOURCE_ANY_TYPE = "type.googleapis.com/istio.mcp.v1alpha1.Resource"
MESH_CONFIG_ANY_TYPE = "type.googleapis.com/istio.mesh.v1alpha1.MeshConfig"
NETWORKING_GROUP = "networking.istio.io"
NETWORKING_VERSIONS = ("v1alpha3", "v1beta1", "v1")
KINDS = ("ServiceEntry", "WorkloadEntry", "WorkloadGroup", "DestinationRule", "Gateway", "VirtualService",
         "Sidecar", "EnvoyFilter")
SECURITY_GROUP = "security.istio.io"
SECURITY_VERSIONS = ("v1beta1", "v1")
# istiod also serves the security kinds; SwiftPilot asks MCP-over-xDS sources for PeerAuthentication.
SECURITY_KINDS = ("PeerAuthentication",)
ALL_KINDS = KINDS + SECURITY_KINDS
NACOS_SERVICE_ENTRY_TYPE = "networking.istio.io/v1alpha3/ServiceEntry"


def current_type_url(kind: str) -> str:
    """The type URL istiod >= 1.24 requests a kind by (spec §3.2)."""
    group = SECURITY_GROUP if kind in SECURITY_KINDS else NETWORKING_GROUP
    return f"{group}/{'v1alpha3' if kind == 'EnvoyFilter' else 'v1'}/{kind}"


def body_package(kind: str) -> str:
    """The proto package of a kind's body."""
    return "istio.security.v1beta1" if kind in SECURITY_KINDS else "istio.networking.v1alpha3"


# MARK: - Istio protos, compiled at test time


_PROTO_FILES = [
    "istio/mcp/v1alpha1/resource.proto",
    "istio/mcp/v1alpha1/metadata.proto",
    "istio/type/v1beta1/selector.proto",  # imported by the networking protos
    "istio/mesh/v1alpha1/config.proto",   # SwiftPilot's MeshConfig subset, for a real bare MeshConfig body
]


@functools.lru_cache(maxsize=1)
def istio_protos() -> Path:
    """Compiles Protos/istio (MCP envelope, networking, MeshConfig) with grpcio-tools into a temporary
    directory on sys.path and imports the modules (registering the messages in the default pool)."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="istio-protos-"))
    atexit.register(shutil.rmtree, out, True)
    protos = ROOT / "Protos"
    files = _PROTO_FILES + sorted(str(p.relative_to(protos)) for area in ("istio/networking/v1alpha3", "istio/security/v1beta1")
                                  for p in (protos / area).glob("*.proto"))
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    code = protoc.main(["grpc_tools.protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", *files])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) compiling {files}")
    sys.path.insert(0, str(out))
    for file in files:
        importlib.import_module(file[: -len(".proto")].replace("/", ".") + "_pb2")
    return out


def message_class(full_name: str):
    istio_protos()
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def body_any(kind: str, spec: dict, package: str = "istio.networking.v1alpha3") -> any_pb2.Any:
    """`spec` (Istio YAML as a dict, camelCase or snake_case keys) as the `Any` body of `kind`."""
    message = json_format.ParseDict(spec, message_class(f"{package}.{kind}")())
    return any_pb2.Any(type_url=f"type.googleapis.com/{package}.{kind}", value=message.SerializeToString())


def envelope_any(name: str, body: any_pb2.Any, version: str = "", labels: dict | None = None,
                 annotations: dict | None = None, create_time: timestamp_pb2.Timestamp | None = None) -> any_pb2.Any:
    """An `istio.mcp.v1alpha1.Resource` packed as MCP-over-xDS carries it."""
    resource = message_class("istio.mcp.v1alpha1.Resource")()
    resource.metadata.name = name
    resource.metadata.version = version
    resource.metadata.labels.update(labels or {})
    resource.metadata.annotations.update(annotations or {})
    if create_time is not None:
        resource.metadata.create_time.CopyFrom(create_time)
    resource.body.CopyFrom(body)
    return any_pb2.Any(type_url=RESOURCE_ANY_TYPE, value=resource.SerializeToString())


@dataclasses.dataclass
class Raw:
    """An entry served verbatim (to send what a correct producer would not): `any` goes into
    `DiscoveryResponse.resources` as is. `name` only identifies it in the server's store."""
    name: str
    any: any_pb2.Any


def undecodable_body(kind: str, name: str) -> Raw:
    """A proper envelope named `name` whose body claims `kind` but holds truncated protobuf bytes."""
    body = any_pb2.Any(type_url=f"type.googleapis.com/istio.networking.v1alpha3.{kind}", value=b"\x0a\xff\x01ab")
    return Raw(name, envelope_any(name, body, version="1"))


def not_an_envelope(kind: str, spec: dict, name: str = "bare-body") -> Raw:
    """A bare `istio.networking.v1alpha3.<kind>` where an `istio.mcp.v1alpha1.Resource` belongs."""
    return Raw(name, body_any(kind, spec, body_package(kind)))


# MARK: - Records


@dataclasses.dataclass
class Request:
    stream: int
    time: float
    type_url: str
    nonce: str
    version_info: str
    error_code: int | None      # None when error_detail is absent
    error_message: str
    has_node: bool
    resource_names: list[str]

    @property
    def is_nack(self) -> bool:
        return self.error_code is not None


@dataclasses.dataclass
class Response:
    stream: int
    time: float
    type_url: str
    nonce: str
    version_info: str
    names: list[str]            # metadata names of the envelopes it carried ("" when not an envelope)
    requested_type_url: str     # the subscription it answers


class _Stream:
    def __init__(self, number: int, context):
        self.number = number
        self.context = context
        self.outgoing: queue.Queue = queue.Queue()
        # Per subscribed type URL (the response's type URL): the latest nonce sent (None = none yet).
        self.latest: dict[str, str | None] = {}
        self.issued: set[str] = set()
        # Type URL of the response -> the type URL it was requested by.
        self.requested_as: dict[str, str] = {}
        self.pending: set[str] = set()  # requested type URLs whose answer is held back


# MARK: - The server


class MCPServer:
    """An MCP-over-xDS config source on 127.0.0.1; ``flavour`` is ``"istiod"`` or ``"nacos"``."""

    def __init__(self, flavour: str = "istiod", port: int | None = None, nacos_group: str = "DEFAULT_GROUP",
                 nacos_answers_any_service_entry_version: bool = False,
                 server_credentials: grpc.ServerCredentials | None = None):
        """``server_credentials`` (e.g. ``grpc.ssl_server_credentials(...)``): serve TLS instead of plaintext."""
        if flavour not in ("istiod", "nacos"):
            raise ValueError(flavour)
        istio_protos()
        self.flavour = flavour
        self.port = port or free_port()
        self.nacos_group = nacos_group
        # Real Nacos (the default here) answers content only for the exact request
        # `networking.istio.io/v1alpha3/ServiceEntry` and an empty list for `networking.istio.io/v1/ServiceEntry`.
        # With this flag a request for ServiceEntry under any networking version is answered, always
        # under the v1alpha3 type URL.
        self.nacos_answers_any_service_entry_version = nacos_answers_any_service_entry_version
        self.server_credentials = server_credentials
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.log: list[str] = []
        self._lock = threading.RLock()
        self._store: dict[str, dict[str, dict | Raw]] = {kind: {} for kind in ALL_KINDS}
        self._built: dict[str, dict[str, any_pb2.Any]] = {kind: {} for kind in ALL_KINDS}
        self._created: dict[tuple[str, str], timestamp_pb2.Timestamp] = {}
        self._resource_version = itertools.count(1000)
        self._push = itertools.count(1)
        self._version = self._next_version()
        self._streams: dict[int, _Stream] = {}
        self._stream_numbers = itertools.count(1)
        self._held: set[str] = set()
        self._server: grpc.Server | None = None
        self.mesh_config = {"configSources": [{"address": f"xds://127.0.0.1:{self.port}"}]}

    # MARK: Lifecycle

    def start(self) -> "MCPServer":
        server = grpc.server(ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"mcp-{self.flavour}"))
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), server)
        if self.server_credentials is not None:
            bound = server.add_secure_port(f"127.0.0.1:{self.port}", self.server_credentials)
        else:
            bound = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if bound != self.port:
            raise RuntimeError(f"MCP server could not bind 127.0.0.1:{self.port}")
        server.start()
        self._server = server
        self._note(f"listening on 127.0.0.1:{self.port}")
        return self

    def stop(self):
        """Stops serving (streams are cancelled); the store is kept for a later ``start()``."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=0).wait(5)
        with self._lock:
            for stream in self._streams.values():
                stream.outgoing.put(None)
            self._streams.clear()
        self._note("stopped")

    @property
    def address(self) -> str:
        return f"xds://127.0.0.1:{self.port}"

    # MARK: Content

    def set(self, kind: str, resources: list) -> str:
        """Replaces every resource of `kind` (Istio objects as dicts, or ``Raw``) and pushes; returns the version."""
        with self._lock:
            self._store[kind] = {}
            self._built[kind] = {}
            for resource in resources:
                self._put(kind, resource)
            return self._changed()

    def upsert(self, kind: str, resource) -> str:
        with self._lock:
            self._put(kind, resource)
            return self._changed()

    def delete(self, kind: str, name: str) -> str:
        """Deletes `name` (``ns/name`` for istiod, the MCP name; for Nacos the service name) and pushes."""
        with self._lock:
            if name not in self._store[kind]:
                raise KeyError(f"{kind} {name} not in the {self.flavour} store: {sorted(self._store[kind])}")
            del self._store[kind][name]
            del self._built[kind][name]
            return self._changed()

    def names(self, kind: str) -> list[str]:
        with self._lock:
            return sorted(self._store[kind])

    def hold(self, kind: str):
        """Do not answer requests for `kind` until ``release(kind)`` (to observe readiness gating)."""
        with self._lock:
            self._held.add(kind)

    def release(self, kind: str):
        with self._lock:
            self._held.discard(kind)
            for stream in self._streams.values():
                for requested in sorted(stream.pending):
                    if self._kind_of(requested) == kind:
                        stream.pending.discard(requested)
                        self._respond(stream, requested)

    @property
    def version(self) -> str:
        return self._version

    # MARK: Recorded traffic

    def requests_on(self, stream: int) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.stream == stream]

    def streams_seen(self) -> list[int]:
        with self._lock:
            return sorted({r.stream for r in self.requests})

    def answered(self, type_url: str) -> list[Response]:
        with self._lock:
            return [r for r in self.responses if r.type_url == type_url]

    def replies_to(self, response: Response) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.stream == response.stream and r.nonce == response.nonce]

    def unacked(self) -> list[Response]:
        """Responses (MeshConfig excluded) without a request on their stream echoing their nonce."""
        with self._lock:
            return [r for r in self.responses if r.type_url != MESH_CONFIG_TYPE and not self.replies_to(r)]

    def ack_problems(self) -> list[str]:
        """Every reply that is not a correct ACK of the response it names (type URL, version, no error)."""
        problems = []
        with self._lock:
            for response in self.responses:
                for reply in self.replies_to(response):
                    if reply.type_url != response.type_url:
                        problems.append(f"reply to {response.nonce} has type {reply.type_url}, response was {response.type_url}")
                    if reply.version_info != response.version_info:
                        problems.append(f"reply to {response.type_url} nonce {response.nonce} carries version "
                                        f"{reply.version_info!r}, response had {response.version_info!r}")
                    if reply.is_nack:
                        problems.append(f"{response.type_url} nonce {response.nonce} NACKed: {reply.error_message}")
        return problems

    def dump(self) -> str:
        with self._lock:
            lines = [f"--- {self.flavour} MCP server on {self.port}: log"] + self.log
            lines.append("--- requests")
            lines += [f"  {r}" for r in self.requests]
            lines.append("--- responses")
            lines += [f"  {r}" for r in self.responses]
        return "\n".join(lines)

    # MARK: Internals

    def _note(self, text: str):
        with self._lock:
            self.log.append(f"{time.monotonic():.3f} {text}")

    def _next_version(self) -> str:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{stamp}/{next(self._push)}" if self.flavour == "istiod" else f"{int(time.time() * 1000)}-{next(self._push)}"

    def _nonce(self) -> str:
        return str(uuid.uuid4()) if self.flavour == "istiod" else f"{time.time_ns():x}{uuid.uuid4().hex[:6]}"

    def _put(self, kind: str, resource):
        if isinstance(resource, Raw):
            self._store[kind][resource.name] = resource
            self._built[kind][resource.name] = resource.any
            return
        metadata = resource.get("metadata", {})
        name, namespace = metadata["name"], metadata.get("namespace")
        revision = str(next(self._resource_version))
        if self.flavour == "istiod":
            mcp_name = f"{namespace}/{name}" if namespace else name  # no namespace: the bare name, as Galley sent
            key = mcp_name
            labels, annotations = metadata.get("labels", {}), metadata.get("annotations", {})
        else:
            namespace = namespace or "public"
            mcp_name = f"{namespace}/{name}.{self.nacos_group}.{namespace}"
            key = name
            labels = {"registryType": "nacos", **metadata.get("labels", {})}
            annotations = {"virtual": "1", **metadata.get("annotations", {})}
        created = self._created.get((kind, mcp_name))
        if created is None:
            created = timestamp_pb2.Timestamp()
            created.GetCurrentTime()
            self._created[(kind, mcp_name)] = created
        self._store[kind][key] = resource
        self._built[kind][key] = envelope_any(mcp_name, body_any(kind, resource.get("spec", {}), body_package(kind)), version=revision,
                                              labels=labels, annotations=annotations, create_time=created)

    def _changed(self) -> str:
        self._version = self._next_version()
        self._note(f"content changed: version {self._version}")
        for stream in list(self._streams.values()):
            if self.flavour == "istiod":
                for type_url in list(stream.latest):
                    self._respond(stream, stream.requested_as.get(type_url, type_url))
            elif NACOS_SERVICE_ENTRY_TYPE in stream.latest:
                self._respond(stream, stream.requested_as[NACOS_SERVICE_ENTRY_TYPE])
        return self._version

    @staticmethod
    def _kind_of(type_url: str) -> str | None:
        parts = type_url.split("/")
        if len(parts) == 3 and parts[0] == NETWORKING_GROUP and parts[1] in NETWORKING_VERSIONS and parts[2] in KINDS:
            return parts[2]
        if len(parts) == 3 and parts[0] == SECURITY_GROUP and parts[1] in SECURITY_VERSIONS and parts[2] in SECURITY_KINDS:
            return parts[2]
        return None

    def _answer(self, requested: str) -> tuple[str, list[any_pb2.Any]] | None:
        """(response type URL, resources) for a subscription, or None when it is never answered."""
        kind = self._kind_of(requested)
        if self.flavour == "istiod":
            if requested == MESH_CONFIG_TYPE:
                mesh = json_format.ParseDict(self.mesh_config, message_class("istio.mesh.v1alpha1.MeshConfig")())
                return requested, [any_pb2.Any(type_url=MESH_CONFIG_ANY_TYPE, value=mesh.SerializeToString())]
            if kind is None:
                return requested, []
            return requested, [self._built[kind][name] for name in sorted(self._built[kind])]
        if requested == MESH_CONFIG_TYPE:
            return None
        if kind == "ServiceEntry" and (requested == NACOS_SERVICE_ENTRY_TYPE or self.nacos_answers_any_service_entry_version):
            return NACOS_SERVICE_ENTRY_TYPE, [self._built[kind][name] for name in sorted(self._built[kind])]
        return requested, []

    def _respond(self, stream: _Stream, requested: str):
        kind = self._kind_of(requested)
        if kind in self._held:
            stream.pending.add(requested)
            self._note(f"stream {stream.number}: holding back {requested}")
            return
        answer = self._answer(requested)
        if answer is None:
            self._note(f"stream {stream.number}: {requested} is never answered by {self.flavour}")
            return
        type_url, resources = answer
        nonce = self._nonce()
        response = discovery_pb2.DiscoveryResponse(type_url=type_url, version_info=self._version, nonce=nonce,
                                                   resources=resources)
        stream.latest[type_url] = nonce
        stream.requested_as[type_url] = requested
        stream.issued.add(nonce)
        self.responses.append(Response(stream.number, time.monotonic(), type_url, nonce, self._version,
                                       [_envelope_name(a) for a in resources], requested))
        stream.outgoing.put(response)

    def _receive(self, stream: _Stream, request: discovery_pb2.DiscoveryRequest):
        with self._lock:
            error = request.error_detail if request.HasField("error_detail") else None
            self.requests.append(Request(stream.number, time.monotonic(), request.type_url, request.response_nonce,
                                         request.version_info, error.code if error is not None else None,
                                         error.message if error is not None else "", request.HasField("node"),
                                         list(request.resource_names)))
            if self.flavour == "istiod":
                self._receive_istiod(stream, request)
            else:
                self._receive_nacos(stream, request, error)

    def _receive_istiod(self, stream: _Stream, request):
        type_url, nonce = request.type_url, request.response_nonce
        if (type_url not in stream.latest and type_url not in stream.pending) or nonce not in stream.issued:
            # New watch, or a nonce this stream never issued (reconnect / istiod's Go-timestamp quirk).
            self._note(f"stream {stream.number}: subscribe {type_url} (nonce {nonce!r})")
            self._respond(stream, type_url)
        elif nonce != stream.latest.get(type_url):
            self._note(f"stream {stream.number}: stale nonce {nonce} for {type_url}, ignored")
        elif request.HasField("error_detail"):
            self._note(f"stream {stream.number}: NACK {type_url} {nonce}: {request.error_detail.message}")
        else:
            self._note(f"stream {stream.number}: ACK {type_url} {request.version_info} {nonce}")

    def _receive_nacos(self, stream: _Stream, request, error):
        type_url, nonce = request.type_url, request.response_nonce
        if type_url == MESH_CONFIG_TYPE:
            self._note(f"stream {stream.number}: xds: type {type_url} should be ignored.")
            return
        if error is not None and error.code != 0:
            self._note(f"stream {stream.number}: xds: ACK error, code: {error.code}, message: {error.message}")
            return
        answered_as_service_entry = self._kind_of(type_url) == "ServiceEntry" and (
            type_url == NACOS_SERVICE_ENTRY_TYPE or self.nacos_answers_any_service_entry_version)
        watched = NACOS_SERVICE_ENTRY_TYPE if answered_as_service_entry else type_url
        if not nonce or watched not in stream.latest:
            self._note(f"stream {stream.number}: xds: init request/reconnect, type {type_url}")
            self._respond(stream, type_url)
        elif stream.latest[watched] != nonce:
            self._note(f"stream {stream.number}: xds: request dis match, type {type_url}")
        else:
            self._note(f"stream {stream.number}: xds: ack, type {type_url}, version {request.version_info}, nonce {nonce}")


def _envelope_name(any_message: any_pb2.Any) -> str:
    if any_message.type_url != RESOURCE_ANY_TYPE:
        return ""
    resource = message_class("istio.mcp.v1alpha1.Resource")()
    resource.ParseFromString(any_message.value)
    return resource.metadata.name


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, owner: MCPServer):
        self.owner = owner

    def StreamAggregatedResources(self, request_iterator, context):
        owner = self.owner
        with owner._lock:
            stream = _Stream(next(owner._stream_numbers), context)
            owner._streams[stream.number] = stream
        owner._note(f"stream {stream.number} opened by {context.peer()}")
        context.add_callback(lambda: stream.outgoing.put(None))

        def read():
            try:
                for request in request_iterator:
                    owner._receive(stream, request)
            except Exception as error:  # noqa: BLE001 - the stream ended
                owner._note(f"stream {stream.number} read ended: {type(error).__name__}")
            finally:
                stream.outgoing.put(None)

        threading.Thread(target=read, name=f"mcp-read-{stream.number}", daemon=True).start()
        try:
            while True:
                response = stream.outgoing.get()
                if response is None:
                    return
                yield response
        finally:
            with owner._lock:
                owner._streams.pop(stream.number, None)
            owner._note(f"stream {stream.number} closed")
