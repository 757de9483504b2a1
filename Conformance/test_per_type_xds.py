"""The per-type xDS services (CDS/EDS/LDS/RDS, state of the world and delta) answer like ADS, and CSDS
reports each connected proxy's per-resource config_status. Clients: official xds-protos stubs over grpcio."""
import grpc
import pytest

from envoy.service.cluster.v3 import cds_pb2_grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2_grpc
from envoy.service.listener.v3 import lds_pb2_grpc
from envoy.service.route.v3 import rds_pb2_grpc
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy.type.matcher.v3 import node_pb2, string_pb2

from harness import ROUTER_NODE_ID, wait_until
from test_ads_protocol import mesh  # noqa: F401 - fixture: SwiftPilot serving a gateway, services and a route
from xds_client import CDS, EDS, LDS, RDS, ADSStream, _Stream, fetch_router_config, node, unpack

SERVICES = {
    CDS: (cds_pb2_grpc.ClusterDiscoveryServiceStub, "StreamClusters", "DeltaClusters"),
    EDS: (eds_pb2_grpc.EndpointDiscoveryServiceStub, "StreamEndpoints", "DeltaEndpoints"),
    LDS: (lds_pb2_grpc.ListenerDiscoveryServiceStub, "StreamListeners", "DeltaListeners"),
    RDS: (rds_pb2_grpc.RouteDiscoveryServiceStub, "StreamRoutes", "DeltaRoutes"),
}
SYNCED, ERROR = csds_pb2.SYNCED, csds_pb2.ERROR


class PerTypeStream(_Stream):
    def __init__(self, port: int, type_url: str, delta: bool, timeout: float = 30):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub_class, sotw, incremental = SERVICES[type_url]
        method = getattr(stub_class(self.channel), incremental if delta else sotw)
        self.delta = delta
        super().__init__(lambda requests, t: method(requests, timeout=t), timeout)

    def send(self, **fields):
        message = discovery_pb2.DeltaDiscoveryRequest if self.delta else discovery_pb2.DiscoveryRequest
        self.outgoing.put(message(**fields))

    def close(self):
        self.outgoing.put(None)
        self.responses.cancel()
        self.channel.close()


def resource_name(any_message) -> str:
    message = unpack(any_message)
    return message.cluster_name if any_message.type_url == EDS else message.name


@pytest.fixture
def ads_reference(mesh):
    """What ADS serves (one ACKed response per type, subscribed like Envoy): type URL -> {name: Any bytes}."""
    pilot, _, _ = mesh
    responses = fetch_router_config(pilot.xds_port)
    reference = {r.type_url: {resource_name(a): a.value for a in r.resources} for r in responses}
    assert set(reference) == {CDS, EDS, LDS, RDS}, reference.keys()
    assert all(reference.values()), {t: list(v) for t, v in reference.items()}
    return pilot, reference


@pytest.mark.parametrize("type_url", [CDS, EDS, LDS, RDS], ids=["cds", "eds", "lds", "rds"])
def test_sotw_per_type_service_answers_like_ads(ads_reference, type_url):
    pilot, reference = ads_reference
    names = [] if type_url in (CDS, LDS) else sorted(reference[type_url])
    stream = PerTypeStream(pilot.xds_port, type_url, delta=False)
    try:
        stream.send(node=node(), type_url=type_url, resource_names=names)
        response = stream.receive()
        assert response.type_url == type_url and response.nonce and response.version_info, response
        got = {resource_name(a): a.value for a in response.resources}
        assert got == reference[type_url], f"{type_url}: {sorted(got)} != ADS {sorted(reference[type_url])}"
        # ACK: not answered.
        stream.send(type_url=type_url, version_info=response.version_info, response_nonce=response.nonce,
                    resource_names=names)
        stream.expect_silence()
    finally:
        stream.close()


@pytest.mark.parametrize("type_url", [CDS, EDS, LDS, RDS], ids=["cds", "eds", "lds", "rds"])
def test_delta_per_type_service_answers_like_ads(ads_reference, type_url):
    pilot, reference = ads_reference
    names = [] if type_url in (CDS, LDS) else sorted(reference[type_url])
    stream = PerTypeStream(pilot.xds_port, type_url, delta=True)
    try:
        stream.send(node=node(), type_url=type_url, resource_names_subscribe=names)
        response = stream.receive()
        assert response.type_url == type_url and response.nonce, response
        got = {r.name: r.resource.value for r in response.resources}
        assert got == reference[type_url], f"{type_url}: {sorted(got)} != ADS {sorted(reference[type_url])}"
        assert all(r.version for r in response.resources), [r.name for r in response.resources if not r.version]
        assert not response.removed_resources
        stream.send(type_url=type_url, response_nonce=response.nonce)
        stream.expect_silence()
    finally:
        stream.close()


def test_per_type_stream_without_node_on_first_request_is_refused(mesh):
    """The node is required on the first request of a stream (SwiftPilot needs it to pick the proxy's config)."""
    pilot, _, _ = mesh
    stream = PerTypeStream(pilot.xds_port, CDS, delta=False)
    try:
        stream.send(type_url=CDS)
        with pytest.raises(grpc.RpcError) as error:
            stream.receive()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    finally:
        stream.close()


def csds(port: int, node_id: str | None = None) -> list:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
        request = csds_pb2.ClientStatusRequest()
        if node_id is not None:
            request.node_matchers.append(node_pb2.NodeMatcher(node_id=string_pb2.StringMatcher(exact=node_id)))
        return list(stub.FetchClientStatus(request, timeout=5).config)
    finally:
        channel.close()


def statuses(port: int, node_id: str) -> dict[tuple[str, str], int]:
    configs = [c for c in csds(port, node_id) if c.node.id == node_id]
    assert len(configs) <= 1, configs
    if not configs:
        return {}
    return {(g.type_url, g.name): g.config_status for g in configs[0].generic_xds_configs}


def test_csds_lists_a_proxy_with_synced_and_nacked_resources(mesh):
    pilot, _, port = mesh
    proxy_id = "router~127.0.0.1~csds-test.istio-system~istio-system.svc.cluster.local"
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(node_id=proxy_id), type_url=CDS)
        clusters = stream.receive()
        cluster_names = {unpack(a).name for a in clusters.resources}
        stream.ack(clusters)

        def clusters_synced():
            status = statuses(pilot.xds_port, proxy_id)
            return {name for (t, name), s in status.items() if t == CDS and s == SYNCED} == cluster_names
        wait_until(clusters_synced, 5, "every cluster SYNCED in CSDS after the ACK")
        assert proxy_id in {c.node.id for c in csds(pilot.xds_port)}, "the proxy is missing without node matchers"

        stream.send(type_url=LDS)
        listeners = stream.receive()
        listener_names = {unpack(a).name for a in listeners.resources}
        assert listener_names
        stream.send(type_url=LDS, version_info="", response_nonce=listeners.nonce,
                    error_detail={"code": 3, "message": "listener rejected by the test"})

        def listeners_error():
            status = statuses(pilot.xds_port, proxy_id)
            return {name for (t, name), s in status.items() if t == LDS and s == ERROR} == listener_names
        wait_until(listeners_error, 5, "every listener ERROR in CSDS after the NACK")
        status = statuses(pilot.xds_port, proxy_id)
        assert all(s == SYNCED for (t, _), s in status.items() if t == CDS), status
        config = [c for c in csds(pilot.xds_port, proxy_id)][0]
        nacked = [g for g in config.generic_xds_configs if g.type_url == LDS]
        assert all("listener rejected by the test" in g.error_state.details for g in nacked), nacked[0]
        # Types never requested by this proxy are not listed as SYNCED.
        assert not [k for k, s in status.items() if k[0] in (EDS, RDS) and s == SYNCED], status
    finally:
        stream.close()
    # Once the stream is gone, the proxy is no longer listed.
    wait_until(lambda: proxy_id not in {c.node.id for c in csds(pilot.xds_port)}, 5, "the proxy gone from CSDS")


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_per_type_cds_stream_follows_a_config_change(mesh, delta):
    pilot, write, _ = mesh
    stream = PerTypeStream(pilot.xds_port, CDS, delta=delta)
    try:
        stream.send(node=node(), type_url=CDS)  # wildcard in both protocols
        first = stream.receive()
        stream.send(**({"type_url": CDS, "response_nonce": first.nonce} if delta else
                       {"type_url": CDS, "version_info": first.version_info, "response_nonce": first.nonce}))
        write(services=("a", "b", "c"))
        update = stream.receive(timeout=15)
        assert update.type_url == CDS and update.nonce != first.nonce
        if delta:
            assert [r.name for r in update.resources] == ["outbound|80||c.example.com"], [r.name for r in update.resources]
            assert not update.removed_resources
        else:
            names = {unpack(a).name for a in update.resources}
            assert {"outbound|80||a.example.com", "outbound|80||c.example.com"} <= names, names
            assert update.version_info != first.version_info
    finally:
        stream.close()


def test_csds_lists_a_real_envoy_as_synced(mesh, envoy):
    pilot, _, port = mesh
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")

    def all_synced():
        status = statuses(pilot.xds_port, ROUTER_NODE_ID)
        types = {t for t, _ in status}
        return types == {CDS, EDS, LDS, RDS} and all(s == SYNCED for s in status.values())
    wait_until(all_synced, 10, "Envoy's clusters, endpoints, listeners and routes SYNCED in CSDS")
    status = statuses(pilot.xds_port, ROUTER_NODE_ID)
    assert (LDS, f"0.0.0.0_{port}") in status and (RDS, f"http.{port}") in status, sorted(status)
