"""An independent xDS client built from the official Envoy protos (PyPI xds-protos) and grpcio."""
from __future__ import annotations

import importlib
import queue
from pathlib import Path

import grpc
from google.protobuf import any_pb2, descriptor_pool, message_factory, unknown_fields

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from harness import ROOT, ROUTER_LABELS, ROUTER_NODE_ID

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def _import_api_modules():
    """Registers every message of the Envoy API files SwiftPilot generates from, in the default pool."""
    for line in (ROOT / "Protos" / "envoy-api-files.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            importlib.import_module(line[: -len(".proto")].replace("/", ".") + "_pb2")


_import_api_modules()


def message_class(type_url: str):
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    return message_factory.GetMessageClass(descriptor)


def node(node_id: str = ROUTER_NODE_ID, namespace: str = "istio-system", labels: dict | None = None) -> base_pb2.Node:
    result = base_pb2.Node(id=node_id, cluster="istio-ingressgateway")
    result.metadata.update({"NAMESPACE": namespace, "LABELS": labels if labels is not None else ROUTER_LABELS})
    return result


def unpack(any_message: any_pb2.Any):
    message = message_class(any_message.type_url)()
    message.ParseFromString(any_message.value)
    return message


def roundtrip_problems(any_message: any_pb2.Any, path: str = "") -> list[str]:
    """Problems parsing `any_message` with the official classes: unknown type, unknown fields,
    or bytes that do not re-serialise identically; nested `Any`s are checked too."""
    where = path or any_message.type_url
    try:
        message = unpack(any_message)
    except KeyError:
        return [f"{where}: type {any_message.type_url} is not in the official API"]
    problems = []
    if message.SerializeToString(deterministic=True) != any_message.value:
        problems.append(f"{where}: re-serialised bytes differ")
    problems += _walk(message, where)
    return problems


def _walk(message, where: str) -> list[str]:
    problems = []
    if len(unknown_fields.UnknownFieldSet(message)):
        problems.append(f"{where}: carries fields unknown to the official {message.DESCRIPTOR.full_name}")
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        items = value.values() if _is_map(field) else (value if field.is_repeated else [value])
        for index, item in enumerate(items):
            if not hasattr(item, "ListFields"):
                continue
            child = f"{where}.{field.name}[{index}]"
            if item.DESCRIPTOR.full_name == "google.protobuf.Any":
                problems += roundtrip_problems(item, child)
            else:
                problems += _walk(item, child)
    return problems


def _is_map(field) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


class _Stream:
    """A bidirectional stream where the test decides each request; responses are read by a
    background thread so a test can wait for one with a timeout (or assert that none comes)."""

    def __init__(self, open_call, timeout: float):
        import threading
        self.outgoing: queue.Queue = queue.Queue()
        self.incoming: queue.Queue = queue.Queue()
        self.responses = open_call(self._requests(), timeout)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _requests(self):
        while True:
            item = self.outgoing.get()
            if item is None:
                return
            yield item

    def _read(self):
        try:
            for response in self.responses:
                self.incoming.put(response)
        except grpc.RpcError as error:
            self.incoming.put(error)

    def receive(self, timeout: float = 10):
        item = self.incoming.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def expect_silence(self, seconds: float = 0.5):
        """Asserts that no response arrives within `seconds`."""
        try:
            item = self.incoming.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"expected no response, got {item}")


class ADSStream(_Stream):
    """A state-of-the-world ADS stream."""

    def __init__(self, port: int, timeout: float = 30):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        super().__init__(lambda requests, t: stub.StreamAggregatedResources(requests, timeout=t), timeout)

    def send(self, **fields):
        self.outgoing.put(discovery_pb2.DiscoveryRequest(**fields))

    def ack(self, response, resource_names=()):
        self.send(type_url=response.type_url, version_info=response.version_info,
                  response_nonce=response.nonce, resource_names=list(resource_names))

    def close(self):
        self.outgoing.put(None)
        self.responses.cancel()
        self.channel.close()


class DeltaADSStream(_Stream):
    """A delta (incremental) ADS stream."""

    def __init__(self, port: int, timeout: float = 30):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        super().__init__(lambda requests, t: stub.DeltaAggregatedResources(requests, timeout=t), timeout)

    def send(self, **fields):
        self.outgoing.put(discovery_pb2.DeltaDiscoveryRequest(**fields))

    def ack(self, response):
        self.send(type_url=response.type_url, response_nonce=response.nonce)

    def close(self):
        self.outgoing.put(None)
        self.responses.cancel()
        self.channel.close()


def fetch_router_config(port: int) -> list[discovery_pb2.DiscoveryResponse]:
    """Subscribes like Envoy (CDS, then EDS for EDS clusters, LDS, then RDS for the listeners' routes),
    ACKs everything, and returns one response per type."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

    stream = ADSStream(port)
    got: dict[str, discovery_pb2.DiscoveryResponse] = {}
    try:
        stream.send(node=node(), type_url=CDS)
        while len(got) < 4:
            response = stream.receive()
            got[response.type_url] = response
            if response.type_url == CDS:
                clusters = [unpack(r) for r in response.resources]
                eds = sorted(c.name for c in clusters if c.type == c.EDS)
                stream.ack(response)
                stream.send(type_url=EDS, resource_names=eds)
                stream.send(type_url=LDS)
            elif response.type_url == LDS:
                stream.ack(response)
                routes = []
                for listener in map(unpack, response.resources):
                    for chain in listener.filter_chains:
                        for network_filter in chain.filters:
                            if network_filter.name != "envoy.filters.network.http_connection_manager":
                                continue
                            manager = hcm.HttpConnectionManager()
                            network_filter.typed_config.Unpack(manager)
                            routes.append(manager.rds.route_config_name)
                stream.send(type_url=RDS, resource_names=sorted(routes))
            elif response.type_url == EDS:
                stream.ack(response, [unpack(r).cluster_name for r in response.resources])
            else:
                stream.ack(response, [unpack(r).name for r in response.resources])
    finally:
        stream.close()
    return list(got.values())
