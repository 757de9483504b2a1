"""The ADS server seen from an independent client: the official Envoy protos (xds-protos) over grpcio.

Each test checks one protocol rule of the xDS spec from outside, for state of the world and delta.
"""
import json

import grpc
import pytest

from harness import free_port, wait_until
from envoy.service.discovery.v3 import discovery_pb2
from xds_client import CDS, EDS, LDS, RDS, ADSStream, DeltaADSStream, node, unpack
from yaml_snippets import gateway, static_service


def virtual_service(host: str, prefix: str, destination: str, port: int = 80, name: str = "vs") -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: istio-system
spec:
  hosts: ["{host}"]
  gateways: [gw]
  http:
  - match: [{{uri: {{prefix: {prefix}}}}}]
    route: [{{destination: {{host: {destination}, port: {{number: {port}}}}}}}]
"""


@pytest.fixture
def mesh(config_dir, swiftpilot):
    """SwiftPilot serving a gateway, two services and a route; returns (pilot, write) where write
    replaces the config file (the embedded source watches the directory)."""
    port = free_port()

    def write(*extra: str, services=("a", "b")):
        documents = [gateway(port)] + [static_service(f"{s}.example.com", 80, [("127.0.0.1", 10000 + i, {})], name=s)
                                       for i, s in enumerate(services)]
        documents.append(virtual_service("a.example.com", "/", "a.example.com"))
        (config_dir / "mesh.yaml").write_text("---\n".join(documents + list(extra)))

    write()
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    return pilot, write, port


def snapshot_version(pilot) -> int:
    return json.loads(pilot.admin("/debug/snapshotz")[1])["version"]


def wait_for_snapshot_after(pilot, version: int):
    wait_until(lambda: snapshot_version(pilot) > version, 15, "a new snapshot")


# MARK: - State of the world


def test_sotw_ack_is_not_answered_and_stale_nonce_is_ignored(mesh):
    pilot, write, _ = mesh
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS)
        first = stream.receive()
        assert first.type_url == CDS and first.nonce and first.version_info
        names = sorted(unpack(r).name for r in first.resources)
        assert "outbound|80||a.example.com" in names and "BlackHoleCluster" in names
        stream.ack(first)
        stream.expect_silence()
        # A request carrying a nonce the server never sent for this type is stale: ignored.
        stream.send(type_url=CDS, version_info=first.version_info, response_nonce="not-a-nonce-of-this-stream-" + first.nonce)
        stream.expect_silence()
    finally:
        stream.close()


def test_sotw_nack_is_recorded_with_its_istio_source_and_not_resent(mesh):
    pilot, write, port = mesh
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS)
        stream.ack(stream.receive())
        stream.send(type_url=RDS, resource_names=[f"http.{port}"])
        routes = stream.receive()
        assert routes.type_url == RDS
        stream.send(type_url=RDS, resource_names=[f"http.{port}"], version_info="", response_nonce=routes.nonce,
                    error_detail={"code": 3, "message": f"rejecting http.{port} for the test"})
        stream.expect_silence(1.0)

        def nacked():
            proxies = pilot.syncz()
            return proxies and proxies[0]["types"].get("RDS", {}).get("nack")
        wait_until(nacked, 5, "the NACK in /debug/syncz")
        rds = pilot.syncz()[0]["types"]["RDS"]
        assert "VirtualService istio-system/vs" in rds["nackSources"], rds
        assert "Gateway istio-system/gw" in rds["nackSources"], rds

        # A new snapshot that changes the routes is sent.
        version = snapshot_version(pilot)
        write(virtual_service("c.example.com", "/", "a.example.com", name="vs2"))
        wait_for_snapshot_after(pilot, version)
        update = stream.receive()
        assert update.type_url == RDS and update.nonce != routes.nonce
    finally:
        stream.close()


def test_sotw_cluster_change_is_followed_by_endpoints(mesh):
    pilot, write, _ = mesh
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS)
        clusters = stream.receive()
        stream.ack(clusters)
        eds_names = sorted(unpack(r).name for r in clusters.resources if unpack(r).type == unpack(r).EDS)
        stream.send(type_url=EDS, resource_names=eds_names)
        endpoints = stream.receive()
        assert endpoints.type_url == EDS
        stream.ack(endpoints, eds_names)
        stream.expect_silence()

        version = snapshot_version(pilot)
        write(services=("a", "b", "c"))
        wait_for_snapshot_after(pilot, version)
        cds = stream.receive()
        assert cds.type_url == CDS
        assert "outbound|80||c.example.com" in [unpack(r).name for r in cds.resources]
        eds = stream.receive()
        assert eds.type_url == EDS, "an EDS response must follow every CDS change so clusters can warm"
        assert "outbound|80||c.example.com" in [unpack(r).cluster_name for r in eds.resources]
    finally:
        stream.close()


def test_sotw_endpoint_change_pushes_only_eds(mesh, config_dir):
    pilot, write, _ = mesh
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS)
        clusters = stream.receive()
        stream.ack(clusters)
        stream.send(type_url=LDS)
        stream.ack(stream.receive())
        names = ["outbound|80||a.example.com"]
        stream.send(type_url=EDS, resource_names=names)
        stream.ack(stream.receive(), names)
        stream.expect_silence()
        version = snapshot_version(pilot)
        text = (config_dir / "mesh.yaml").read_text().replace("http: 10000", "http: 10100")
        (config_dir / "mesh.yaml").write_text(text)
        wait_for_snapshot_after(pilot, version)
        update = stream.receive()
        assert update.type_url == EDS
        ports = [e.endpoint.address.socket_address.port_value
                 for r in update.resources for g in unpack(r).endpoints for e in g.lb_endpoints]
        assert 10100 in ports
        stream.expect_silence()
    finally:
        stream.close()


def test_malformed_node_is_refused_with_invalid_argument(mesh):
    pilot, _, _ = mesh
    stream = ADSStream(pilot.xds_port)
    try:
        stream.send(node=node(node_id="not-an-istio-node"), type_url=CDS)
        with pytest.raises(grpc.RpcError) as error:
            stream.receive()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not-an-istio-node" in error.value.details()
    finally:
        stream.close()


# MARK: - Delta


def test_delta_sends_changes_and_removals_only(mesh):
    pilot, write, _ = mesh
    stream = DeltaADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS, resource_names_subscribe=["*"])
        first = stream.receive()
        versions = {r.name: r.version for r in first.resources}
        assert "outbound|80||b.example.com" in versions and all(versions.values())
        stream.ack(first)
        stream.expect_silence()

        version = snapshot_version(pilot)
        write(services=("a",))
        wait_for_snapshot_after(pilot, version)
        update = stream.receive()
        assert list(update.removed_resources) == ["outbound|80||b.example.com"]
        assert [r.name for r in update.resources] == [], "unchanged clusters are not resent"
    finally:
        stream.close()


def test_delta_reconnect_with_initial_versions_resends_only_differences(mesh):
    pilot, write, _ = mesh
    stream = DeltaADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=CDS, resource_names_subscribe=["*"])
        first = stream.receive()
        held = {r.name: r.version for r in first.resources}
        stream.ack(first)
    finally:
        stream.close()

    version = snapshot_version(pilot)
    write(services=("a", "c"))  # b deleted and c added while the client was away
    wait_for_snapshot_after(pilot, version)

    again = DeltaADSStream(pilot.xds_port)
    try:
        again.send(node=node(), type_url=CDS, resource_names_subscribe=["*"], initial_resource_versions=held)
        response = again.receive()
        assert sorted(r.name for r in response.resources) == ["outbound|80||c.example.com"]
        assert list(response.removed_resources) == ["outbound|80||b.example.com"]
    finally:
        again.close()


def test_delta_named_subscriptions_unsubscribe_and_missing_names(mesh):
    pilot, _, _ = mesh
    stream = DeltaADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=EDS,
                    resource_names_subscribe=["outbound|80||a.example.com", "outbound|80||nothing.example.com"])
        response = stream.receive()
        assert [r.name for r in response.resources] == ["outbound|80||a.example.com"]
        assert list(response.removed_resources) == ["outbound|80||nothing.example.com"], "non-existence is said at once"
        stream.ack(response)
        stream.send(type_url=EDS, resource_names_unsubscribe=["outbound|80||a.example.com"])
        stream.expect_silence()
        # Subscribing again must be answered even though the server sent it before.
        stream.send(type_url=EDS, resource_names_subscribe=["outbound|80||a.example.com"])
        again = stream.receive()
        assert [r.name for r in again.resources] == ["outbound|80||a.example.com"]
    finally:
        stream.close()


def test_delta_nack_is_not_resent(mesh):
    pilot, _, port = mesh
    stream = DeltaADSStream(pilot.xds_port)
    try:
        stream.send(node=node(), type_url=LDS, resource_names_subscribe=["*"])
        listeners = stream.receive()
        assert [r.name for r in listeners.resources] == [f"0.0.0.0_{port}"]
        stream.send(type_url=LDS, response_nonce=listeners.nonce, error_detail={"code": 3, "message": "no"})
        stream.expect_silence(1.0)
        wait_until(lambda: pilot.syncz()[0]["types"].get("LDS", {}).get("nack") == "no", 5, "the delta NACK in syncz")
    finally:
        stream.close()


def test_a_proxy_that_does_not_read_does_not_hold_back_the_others(mesh):
    """One stream never reads its responses (its flow-control window fills up); another keeps
    receiving every change promptly, and SwiftPilot reports the stuck one as STALE."""
    pilot, write, _ = mesh
    services = tuple(f"s{i}" for i in range(300))
    version = snapshot_version(pilot)
    write(services=services)
    wait_for_snapshot_after(pilot, version)

    stuck_channel = grpc.insecure_channel(f"127.0.0.1:{pilot.xds_port}")
    stuck_requests = [discovery_pb2.DiscoveryRequest(node=node(node_id="router~127.0.0.2~stuck.istio-system~istio-system.svc.cluster.local"),
                                                     type_url=CDS)]
    from envoy.service.discovery.v3 import ads_pb2_grpc
    import threading
    release = threading.Event()

    def stuck_stream():  # sends its request, then keeps the stream open without ever reading
        yield from stuck_requests
        release.wait(60)
    stuck = ads_pb2_grpc.AggregatedDiscoveryServiceStub(stuck_channel).StreamAggregatedResources(stuck_stream(), timeout=60)
    healthy = ADSStream(pilot.xds_port)
    try:
        healthy.send(node=node(), type_url=CDS)
        healthy.ack(healthy.receive())
        for change in range(5):
            version = snapshot_version(pilot)
            write(services=services[: 300 - 10 * (change + 1)])
            wait_for_snapshot_after(pilot, version)
            update = healthy.receive(timeout=5)
            assert update.type_url == CDS
            assert len(update.resources) == 300 - 10 * (change + 1) + 1  # + BlackHoleCluster
            healthy.ack(update)
        def cds_states():
            return {p["nodeID"].split("~")[2]: p["types"].get("CDS", {}) for p in pilot.syncz()}
        wait_until(lambda: cds_states()["ingress-1.istio-system"].get("ackedVersion") == cds_states()["ingress-1.istio-system"].get("sentVersion"),
                   5, "the healthy proxy's ACK")
        stuck_state = cds_states()["stuck.istio-system"]
        assert stuck_state.get("ackedVersion") != stuck_state.get("sentVersion"), stuck_state
    finally:
        release.set()
        healthy.close()
        stuck.cancel()
        stuck_channel.close()
