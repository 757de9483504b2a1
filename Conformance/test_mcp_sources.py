"""Issue: SwiftPilot as an MCP-over-xDS sink of independent servers (istiod-like and Nacos-like),
proven with real Envoy traffic. The servers are `mcp_server.MCPServer` (Python, official xds-protos
stubs, Istio protos compiled at test time); every request SwiftPilot sends them is recorded.
"""
import json

import pytest

from harness import free_port, request, wait_until
from mcp_server import (ALL_KINDS, KINDS, MESH_CONFIG_TYPE, NACOS_SERVICE_ENTRY_TYPE, MCPServer, current_type_url,
                        istio_protos, not_an_envelope, undecodable_body)
from yaml_snippets import gateway as gateway_yaml
from yaml_snippets import static_service as service_entry_yaml

NS = "istio-system"
EXPECTED_TYPE_URLS = {MESH_CONFIG_TYPE} | {current_type_url(kind) for kind in ALL_KINDS}


# MARK: - Istio objects as dicts (what `kubectl get -o json` would show, minus status)


def gateway(port: int, name: str = "gw", namespace: str = NS) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "mcp-test"}},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}


def service_entry(name: str, host: str, backend_port: int, namespace: str = NS) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": namespace, "annotations": {"owner": "conformance"}},
            "spec": {"hosts": [host], "location": "MESH_INTERNAL", "resolution": "STATIC",
                     "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                     "endpoints": [{"address": "127.0.0.1", "ports": {"http": backend_port}}]}}


def virtual_service_spec(host: str, destination: str, gateways=("gw",)) -> dict:
    return {"hosts": [host], "gateways": list(gateways),
            "http": [{"match": [{"uri": {"prefix": "/"}}],
                      "route": [{"destination": {"host": destination, "port": {"number": 80}}}]}]}


def virtual_service(name: str, host: str, destination: str, namespace: str | None = NS) -> dict:
    metadata = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata,
            "spec": virtual_service_spec(host, destination)}


def virtual_service_yaml(name: str, host: str, destination: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {NS}
spec:
  hosts:
  - {host}
  gateways:
  - gw
  http:
  - match:
    - uri:
        prefix: /
    route:
    - destination:
        host: {destination}
        port:
          number: 80
"""


# MARK: - Fixtures and helpers


def backend_of(port: int, host: str, path: str = "/") -> tuple[int, str | None]:
    status, headers, _ = request(port, path, host=host)
    return status, headers.get("x-backend")


def wait_backend(port: int, host: str, expected, timeout: float = 10):
    """Waits until a request for `host` gets `expected`: a backend name, or an HTTP status."""
    def reached():
        status, backend = backend_of(port, host)
        return backend == expected if isinstance(expected, str) else (status == expected and backend is None)
    wait_until(reached, timeout, f"{host} on :{port} -> {expected}")


def domains(proxy, port: int) -> set[str]:
    route = proxy.route_config(f"http.{port}")
    if route is None:
        return set()
    return {d for host in route["route_config"].get("virtual_hosts", []) for d in host.get("domains", [])}


def mcpz(pilot) -> dict:
    status, body = pilot.admin("/debug/mcpz")
    assert status == 200, body
    return json.loads(body)


def wait_all_acked(server: MCPServer, timeout: float = 10):
    try:
        wait_until(lambda: not server.unacked(), timeout, "every response ACKed")
    except TimeoutError as error:
        raise AssertionError(f"{error}; never replied to: {server.unacked()}") from None


def assert_initial_requests(server: MCPServer, stream: int, expected_types: set[str]):
    """A new stream: node on the first request, one wildcard request per type, empty version and nonce (§2.4, §2.5)."""
    requests = server.requests_on(stream)
    assert requests, f"no requests on stream {stream}"
    assert requests[0].has_node, "the first request of a stream must carry the node"
    firsts = {}
    for r in requests:
        firsts.setdefault(r.type_url, r)
    assert set(firsts) == expected_types, f"requested types {sorted(firsts)} != {sorted(expected_types)}"
    for r in firsts.values():
        assert r.version_info == "" and r.nonce == "" and r.resource_names == [] and not r.is_nack, r


# MARK: - istiod-like source


def test_istiod_source_drives_envoy_and_follows_changes(mcp_servers, backends, swiftpilot, envoy):
    one, two = backends("one"), backends("two")
    port = free_port()
    server = mcp_servers("istiod")
    server.set("Gateway", [gateway(port)])
    server.set("ServiceEntry", [service_entry("one", "one.example.com", one.port),
                                service_entry("two", "two.example.com", two.port)])
    server.set("VirtualService", [virtual_service("web", "web.example.com", "one.example.com")])
    server.hold("Sidecar")

    pilot = swiftpilot("--config-source", server.address, ready=False)
    # Every type but Sidecar answered and ACKed: SwiftPilot must still not be ready.
    wait_until(lambda: {r.type_url for r in server.requests} >= EXPECTED_TYPE_URLS, 15, "SwiftPilot's subscriptions")
    wait_until(lambda: {r.type_url for r in server.responses} == EXPECTED_TYPE_URLS - {current_type_url("Sidecar")},
               5, "every type but Sidecar answered")
    wait_all_acked(server)
    status, body = pilot.admin("/healthz/ready")
    assert status == 503, f"ready although Sidecar was never answered: {body!r}"
    assert b"Sidecar" in body, body
    server.release("Sidecar")
    pilot.wait_ready(10)

    # What SwiftPilot asked for: exactly Istio's current type URLs plus MeshConfig, on one stream.
    assert server.streams_seen() == [1]
    assert_initial_requests(server, 1, EXPECTED_TYPE_URLS)

    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "web.example.com", "one")
    assert "web.example.com" in domains(proxy, port)

    # The VirtualService changes at the source: traffic follows.
    server.set("VirtualService", [virtual_service("web", "web.example.com", "two.example.com")])
    wait_backend(port, "web.example.com", "two")

    # The service it routes to is deleted: the route stays, its cluster is gone -> 503 (Istio: validate_clusters false).
    server.delete("ServiceEntry", f"{NS}/two")
    wait_backend(port, "web.example.com", 503)
    # The VirtualService is deleted: the gateway still listens, nothing binds the host -> 404.
    server.delete("VirtualService", f"{NS}/web")
    wait_backend(port, "web.example.com", 404)
    assert "web.example.com" not in domains(proxy, port)

    # Every response ACKed with its own nonce and version, on its stream, never NACKed.
    wait_all_acked(server)
    assert not server.ack_problems(), server.ack_problems()
    # MeshConfig: answered (initially and with every push) but never ACKed, requested once.
    mesh_responses = server.answered(MESH_CONFIG_TYPE)
    assert len(mesh_responses) >= 4, mesh_responses
    assert all(not server.replies_to(r) for r in mesh_responses), [server.replies_to(r) for r in mesh_responses]
    assert len([r for r in server.requests if r.type_url == MESH_CONFIG_TYPE]) == 1
    # No request for a type URL SwiftPilot did not subscribe to, no duplicate subscription.
    assert {r.type_url for r in server.requests} == EXPECTED_TYPE_URLS
    assert all(r.nonce for r in server.requests[len(EXPECTED_TYPE_URLS):]), "a second initial request was sent"


# MARK: - Nacos-like source plus a directory


def test_nacos_service_entries_merge_with_a_directory(mcp_servers, backends, swiftpilot, envoy, config_dir):
    nacos_backend, nacos_backend_2, decoy = backends("nacos-1"), backends("nacos-2"), backends("decoy")
    port = free_port()
    host = "echo.default-group.public.nacos"
    server = mcp_servers("nacos")
    server.set("ServiceEntry", [service_entry("echo", host, nacos_backend.port, namespace="public")])
    nacos_name = "public/echo.DEFAULT_GROUP.public"
    (config_dir / "routes.yaml").write_text("---\n".join([
        gateway_yaml(port),
        virtual_service_yaml("shop", "shop.example.com", host),
        # The same ServiceEntry (namespace/name) as Nacos serves: the first configured source (Nacos) wins.
        service_entry_yaml(host, 80, [("127.0.0.1", decoy.port, {})], name="echo.DEFAULT_GROUP.public",
                           namespace="public"),
    ]))

    # Ready although Nacos never answers MeshConfig. Nacos serves ServiceEntries only under v1alpha3:
    # SwiftPilot asks for both versions and serves the union.
    pilot = swiftpilot("--config-source", server.address + "?versions=v1,v1alpha3", "--config-source", f"fs://{config_dir}")
    assert any(r.type_url == MESH_CONFIG_TYPE for r in server.requests)
    assert server.answered(MESH_CONFIG_TYPE) == []
    # ServiceEntry came under Nacos' v1alpha3 type URL; the v1 request got Nacos' empty answer.
    service_entries = [r for r in server.answered(NACOS_SERVICE_ENTRY_TYPE) if r.names]
    assert service_entries and service_entries[0].names == [nacos_name], service_entries
    assert service_entries[0].requested_type_url == NACOS_SERVICE_ENTRY_TYPE
    wait_all_acked(server)
    assert not server.ack_problems(), server.ack_problems()

    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "shop.example.com", "nacos-1")
    summary = mcpz(pilot)
    conflicts = [c for c in summary["conflicts"] if nacos_name in c["resource"]]
    assert conflicts and conflicts[0]["servedFrom"] == server.address, summary["conflicts"]
    assert conflicts[0]["ignoredFrom"] == f"fs://{config_dir}", summary["conflicts"]
    synced = {s["id"]: s["syncedKinds"] for s in summary["sources"]}
    assert set(synced[server.address]) == set(ALL_KINDS), synced

    # Nacos pushes a new endpoint: traffic follows.
    server.set("ServiceEntry", [service_entry("echo", host, nacos_backend_2.port, namespace="public")])
    wait_backend(port, "shop.example.com", "nacos-2")
    wait_all_acked(server)
    assert not server.ack_problems(), server.ack_problems()


# MARK: - Bad resources and bad envelopes


def test_bad_resources_are_dropped_and_bad_envelopes_nacked(mcp_servers, backends, swiftpilot, envoy):
    one, two = backends("one"), backends("two")
    port = free_port()
    server = mcp_servers("istiod")
    server.set("Gateway", [gateway(port)])
    server.set("ServiceEntry", [service_entry("one", "one.example.com", one.port),
                                service_entry("two", "two.example.com", two.port),
                                undecodable_body("ServiceEntry", f"{NS}/broken")])
    server.set("VirtualService", [virtual_service("web", "web.example.com", "one.example.com"),
                                  virtual_service("no-namespace", "lost.example.com", "one.example.com", namespace=None)])
    pilot = swiftpilot("--config-source", server.address)
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "web.example.com", "one")
    assert backend_of(port, "lost.example.com")[0] == 404
    assert "lost.example.com" not in domains(proxy, port) and "web.example.com" in domains(proxy, port)

    # Dropped resources are visible, naming source, kind and field; their responses were ACKed, not NACKed.
    rejected = mcpz(pilot)["rejected"]
    def find(rejected: list, kind: str, field: str):
        return [r for r in rejected if r["source"] == server.address and r.get("field") == field
                and kind in ((r.get("resource") or "") + r["error"])]
    assert find(rejected, "VirtualService", "metadata.name"), rejected
    assert any("no-namespace" in r["error"] for r in find(rejected, "VirtualService", "metadata.name")), rejected
    assert find(rejected, "ServiceEntry", "body"), rejected
    wait_all_acked(server)
    assert not server.ack_problems(), server.ack_problems()

    # An envelope that is not an istio.mcp.v1alpha1.Resource: the whole response is NACKed, nothing of it applies.
    accepted = [r for r in server.answered(current_type_url("VirtualService")) if server.replies_to(r)][-1]
    server.set("VirtualService", [virtual_service("web", "web.example.com", "two.example.com"),
                                  not_an_envelope("VirtualService", virtual_service_spec("bare.example.com", "two.example.com"))])
    bad = server.answered(current_type_url("VirtualService"))[-1]
    wait_until(lambda: server.replies_to(bad), 10, "SwiftPilot's reply to the bad VirtualService response")
    [nack] = server.replies_to(bad)
    assert nack.is_nack and nack.error_code != 0 and nack.error_message, nack
    assert nack.version_info == accepted.version_info, f"NACK should keep the last accepted version {accepted.version_info}: {nack}"
    assert any(r["source"] == server.address and "VirtualService" in r["error"] and "istio.mcp.v1alpha1.Resource" in r["error"]
               for r in mcpz(pilot)["rejected"]), mcpz(pilot)["rejected"]
    # The previous config keeps serving.
    pilot.wait_ready(5)
    for _ in range(3):
        assert backend_of(port, "web.example.com") == (200, "one")
    assert "bare.example.com" not in domains(proxy, port)

    # A correct response afterwards applies and is ACKed.
    server.set("VirtualService", [virtual_service("web", "web.example.com", "two.example.com")])
    wait_backend(port, "web.example.com", "two")
    good = server.answered(current_type_url("VirtualService"))[-1]
    wait_until(lambda: server.replies_to(good), 10, "the ACK of the corrected VirtualService")
    assert not server.replies_to(good)[0].is_nack
    # `rejected` is the current state: the VirtualService problems are gone, the broken ServiceEntry (still served) stays.
    rejected = mcpz(pilot)["rejected"]
    assert not [r for r in rejected if "VirtualService" in r["error"]], rejected
    assert find(rejected, "ServiceEntry", "body"), rejected


# MARK: - Reconnect


def test_reconnects_and_converges_after_source_restart(mcp_servers, backends, swiftpilot, envoy):
    one = backends("one")
    port = free_port()
    server = mcp_servers("istiod")
    server.set("Gateway", [gateway(port)])
    server.set("ServiceEntry", [service_entry("one", "one.example.com", one.port)])
    server.set("VirtualService", [virtual_service("web", "web.example.com", "one.example.com"),
                                  virtual_service("gone", "gone.example.com", "one.example.com")])
    pilot = swiftpilot("--config-source", server.address)
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "web.example.com", "one")
    wait_backend(port, "gone.example.com", "one")
    assert "gone.example.com" in domains(proxy, port)
    wait_all_acked(server)

    server.stop()
    # Down until SwiftPilot's stream ended and at least one reconnect attempt failed against the closed port.
    wait_until(lambda: pilot.output().count("reconnecting") >= 2, 5, "SwiftPilot to retry the stopped source")
    # While the source is down, the last config keeps serving and SwiftPilot stays ready.
    assert pilot.admin("/healthz/ready")[0] == 200
    assert backend_of(port, "gone.example.com") == (200, "one")

    server.delete("VirtualService", f"{NS}/gone")  # nobody connected: no push; only the next stream sees it
    server.start()
    wait_until(lambda: len(server.streams_seen()) >= 2, 5, "SwiftPilot to reconnect within ~5 s")
    wait_backend(port, "gone.example.com", 404, timeout=5)
    assert "gone.example.com" not in domains(proxy, port)
    assert backend_of(port, "web.example.com") == (200, "one")

    stream = server.streams_seen()[-1]
    assert_initial_requests(server, stream, EXPECTED_TYPE_URLS)
    wait_all_acked(server)
    assert not server.ack_problems(), server.ack_problems()


# MARK: - The reference servers themselves (no SwiftPilot): what the tests above rely on


def test_mcp_reference_servers_behave_like_istiod_and_nacos(mcp_servers):
    from google.rpc import status_pb2

    from mcp_server import message_class
    from xds_client import ADSStream, node

    def envelopes(response):
        result = []
        for any_resource in response.resources:
            assert any_resource.type_url == "type.googleapis.com/istio.mcp.v1alpha1.Resource"
            resource = message_class("istio.mcp.v1alpha1.Resource")()
            resource.ParseFromString(any_resource.value)
            result.append(resource)
        return result

    istiod = mcp_servers("istiod")
    istiod.set("VirtualService", [virtual_service("web", "web.example.com", "one.example.com")])
    stream = ADSStream(istiod.port, timeout=10)
    try:
        stream.send(type_url=MESH_CONFIG_TYPE, node=node())
        mesh = stream.receive()
        assert mesh.type_url == MESH_CONFIG_TYPE and len(mesh.resources) == 1
        assert mesh.resources[0].type_url == "type.googleapis.com/istio.mesh.v1alpha1.MeshConfig"
        # istiod's client puts a Go timestamp in the initial nonce: a nonce never issued = a new subscription.
        stream.send(type_url="networking.istio.io/v1alpha3/VirtualService", response_nonce="2026-11-27 08:00:00 +0000 UTC")
        first = stream.receive()
        assert first.type_url == "networking.istio.io/v1alpha3/VirtualService" and first.version_info and first.nonce
        [web] = envelopes(first)
        assert web.metadata.name == f"{NS}/web" and web.metadata.version and web.metadata.create_time.seconds > 0
        assert web.body.type_url == "type.googleapis.com/istio.networking.v1alpha3.VirtualService"
        stream.ack(first)
        stream.send(type_url="security.istio.io/v1/AuthorizationPolicy")
        assert list(stream.receive().resources) == []
        istiod.delete("VirtualService", f"{NS}/web")  # pushes every subscribed type
        pushed = {r.type_url: r for r in (stream.receive(), stream.receive(), stream.receive())}
        assert set(pushed) == {MESH_CONFIG_TYPE, "networking.istio.io/v1alpha3/VirtualService", "security.istio.io/v1/AuthorizationPolicy"}
        assert list(pushed["networking.istio.io/v1alpha3/VirtualService"].resources) == []
        seen = len(istiod.requests)
        stream.ack(first)  # stale: ignored, so the next messages are the next push
        wait_until(lambda: len(istiod.requests) > seen, 5, "the stale ACK to arrive")
        istiod.set("Gateway", [])
        assert {stream.receive().version_info for _ in range(3)} == {istiod.version}
    finally:
        stream.close()

    nacos = mcp_servers("nacos")
    nacos.set("ServiceEntry", [service_entry("echo", "echo.nacos", 8080, namespace="public")])
    stream = ADSStream(nacos.port, timeout=10)
    try:
        stream.send(type_url=MESH_CONFIG_TYPE, node=node())  # never answered
        stream.send(type_url="networking.istio.io/v1/VirtualService")
        empty = stream.receive()
        assert empty.type_url == "networking.istio.io/v1/VirtualService" and list(empty.resources) == []
        stream.send(type_url=NACOS_SERVICE_ENTRY_TYPE)
        entries = stream.receive()
        [echo] = envelopes(entries)
        assert echo.metadata.name == "public/echo.DEFAULT_GROUP.public"
        assert echo.metadata.labels["registryType"] == "nacos" and echo.metadata.annotations["virtual"] == "1"
        stream.send(type_url=NACOS_SERVICE_ENTRY_TYPE, response_nonce=entries.nonce, version_info="",
                    error_detail=status_pb2.Status(code=3, message="test NACK"))  # only logged
        wait_until(lambda: any(r.is_nack for r in nacos.requests), 5, "the NACK to arrive")
        nacos.set("ServiceEntry", [])
        push = stream.receive()
        assert push.type_url == NACOS_SERVICE_ENTRY_TYPE and list(push.resources) == []
        assert MESH_CONFIG_TYPE not in {r.type_url for r in nacos.responses}
    finally:
        stream.close()
