"""Issue: Istio → Envoy translation for gateways — DestinationRule traffic policy through a real Envoy.

Load balancing, connection pools (circuit breaking), outlier detection and upstream TLS, observed as
traffic and Envoy stats.
"""
import concurrent.futures
import json

import pytest

from harness import backend_counts, free_port, make_certificates, request, server_ssl_context
from yaml_snippets import destination_rule, gateway, http_port, route_to, service_entry, virtual_service

HOST = "shop.example.com"


def docs_for(port: int, backends_by_version: dict, rule: dict | None, subsets=None, route=None, protocol="HTTP") -> list[str]:
    """Gateway on `port`, service `shop.internal:80` with one endpoint per backend, a DR, a catch-all VS."""
    endpoints = [{"address": "127.0.0.1", "ports": {"http": b.port}, "labels": {"version": v}}
                 for v, b in backends_by_version.items()]
    docs = [gateway(port, hosts=["*"]),
            service_entry("shop", ["shop.internal"], [http_port(80, protocol=protocol)], endpoints=endpoints),
            virtual_service("shop", [HOST], http=[{"route": [route or route_to("shop.internal", 80)]}])]
    if rule is not None or subsets:
        docs.append(destination_rule("shop", "shop.internal", subsets, **({"trafficPolicy": rule} if rule else {})))
    return docs


def cluster_stat(proxy, cluster: str, name: str) -> int:
    key = f"cluster.{cluster}.{name}"
    return proxy.stats(key).get(key, 0)


def test_round_robin_alternates_between_endpoints(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()
    serve_router(docs_for(port, {"v1": v1, "v2": v2}, {"loadBalancer": {"simple": "ROUND_ROBIN"}}), [port])
    counts = backend_counts(port, 20, host=HOST)
    assert counts == {"v1": 10, "v2": 10}, counts


def test_consistent_hash_on_a_header_pins_each_user(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()
    _, proxy = serve_router(docs_for(port, {"v1": v1, "v2": v2},
                                     {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}), [port])
    seen = set()
    for user in range(24):
        counts = backend_counts(port, 5, host=HOST, headers={"x-user": f"user-{user}"})
        assert len(counts) == 1, f"user-{user} was spread over {counts}"
        seen |= set(counts)
    assert seen == {"v1", "v2"}, "different users land on different endpoints"
    route = proxy.route_config(f"http.{port}")["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["hash_policy"] == [{"header": {"header_name": "x-user"}}]


def test_subset_policy_overrides_the_rule_policy(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()
    subsets = {"all": {"labels": {}, "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}}}
    docs = docs_for(port, {"v1": v1, "v2": v2}, {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}},
                    subsets=subsets, route=route_to("shop.internal", 80, subset="all"))
    serve_router(docs, [port])
    # The subset's round robin replaces the rule's consistent hash: one user is spread evenly.
    assert backend_counts(port, 20, host=HOST, headers={"x-user": "same"}) == {"v1": 10, "v2": 10}


def test_port_level_settings_apply_to_their_port_only(serve_router, backends, certs):
    # One service, two ports: 80 reaches a plaintext backend, 443 an HTTPS one. Only the
    # port-level entry for 443 asks for TLS; the rule's top level says nothing about TLS.
    plain, secure = backends("plain"), backends("secure", ssl_context=server_ssl_context(certs))
    port = free_port()
    docs = [gateway(port, hosts=["*"]),
            service_entry("shop", ["shop.internal"], [http_port(80), http_port(443, name="https")],
                          endpoints=[{"address": "127.0.0.1", "ports": {"http": plain.port, "https": secure.port}}]),
            virtual_service("shop", [HOST], http=[
                {"match": [{"uri": {"prefix": "/secure"}}], "route": [route_to("shop.internal", 443)]},
                {"route": [route_to("shop.internal", 80)]}]),
            destination_rule("shop", "shop.internal", trafficPolicy={
                "loadBalancer": {"simple": "ROUND_ROBIN"},
                "portLevelSettings": [{"port": {"number": 443},
                                       "tls": {"mode": "SIMPLE", "caCertificates": certs["ca"], "sni": "localhost"}}]})]
    _, proxy = serve_router(docs, [port])
    status, headers, _ = request(port, "/secure", host=HOST)
    assert status == 200 and headers["x-backend"] == "secure"
    status, headers, _ = request(port, "/", host=HOST)
    assert status == 200 and headers["x-backend"] == "plain"
    assert cluster_stat(proxy, "outbound|443||shop.internal", "ssl.handshake") >= 1
    assert cluster_stat(proxy, "outbound|80||shop.internal", "ssl.handshake") == 0


def test_connection_pool_limits_trip_the_circuit_breaker(serve_router, backends):
    slow = backends("slow", delay=1.0)
    port = free_port()
    rule = {"connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1, "maxRequestsPerConnection": 1}}}
    _, proxy = serve_router(docs_for(port, {"v1": slow}, rule), [port])
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: request(port, "/", host=HOST)[0], range(6)))
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    assert cluster_stat(proxy, "outbound|80||shop.internal", "upstream_rq_pending_overflow") == statuses.count(503)


def test_outlier_detection_ejects_the_failing_endpoint(serve_router, backends):
    good, bad = backends("good"), backends("bad", status=500)
    port = free_port()
    rule = {"loadBalancer": {"simple": "ROUND_ROBIN"},
            "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "60s",
                                 "maxEjectionPercent": 100}}
    _, proxy = serve_router(docs_for(port, {"v1": good, "v2": bad}, rule), [port])
    first = backend_counts(port, 10, host=HOST)
    assert first.get("bad", 0) <= 2, first
    assert backend_counts(port, 20, host=HOST) == {"good": 20}
    assert cluster_stat(proxy, "outbound|80||shop.internal", "outlier_detection.ejections_enforced_consecutive_5xx") >= 1


@pytest.fixture
def certs(workdir):
    return make_certificates(workdir / "certs")


def test_upstream_simple_tls_verifies_the_backend(serve_router, backends, certs):
    secure = backends("secure", ssl_context=server_ssl_context(certs))
    port = free_port()
    rule = {"tls": {"mode": "SIMPLE", "caCertificates": certs["ca"], "sni": "localhost"}}
    _, proxy = serve_router(docs_for(port, {"v1": secure}, rule), [port])
    status, headers, body = request(port, "/tls", host=HOST)
    assert status == 200 and headers["x-backend"] == "secure", body
    assert cluster_stat(proxy, "outbound|80||shop.internal", "ssl.handshake") >= 1


def test_upstream_tls_with_a_wrong_san_fails(serve_router, backends, certs):
    secure = backends("secure", ssl_context=server_ssl_context(certs))
    port = free_port()
    rule = {"tls": {"mode": "SIMPLE", "caCertificates": certs["ca"], "sni": "localhost", "subjectAltNames": ["other.test"]}}
    serve_router(docs_for(port, {"v1": secure}, rule), [port])
    assert request(port, "/", host=HOST)[0] == 503
    assert not secure.requests


def test_upstream_mutual_tls_presents_the_client_certificate(serve_router, backends, certs):
    secure = backends("secure", ssl_context=server_ssl_context(certs, require_client_certificate=True))
    port = free_port()
    mutual = {"mode": "MUTUAL", "caCertificates": certs["ca"], "sni": "localhost",
              "clientCertificate": certs["client_cert"], "privateKey": certs["client_key"]}
    subsets = {"no-cert": {"labels": {}, "trafficPolicy": {"tls": {"mode": "SIMPLE", "caCertificates": certs["ca"], "sni": "localhost"}}}}
    docs = docs_for(port, {"v1": secure}, {"tls": mutual}, subsets=subsets)
    docs.append(virtual_service("shop-no-cert", ["no-cert.example.com"],
                                http=[{"route": [route_to("shop.internal", 80, subset="no-cert")]}]))
    serve_router(docs, [port])
    status, headers, _ = request(port, "/", host=HOST)
    assert status == 200 and headers["x-backend"] == "secure"
    assert request(port, "/", host="no-cert.example.com")[0] == 503, "the backend requires a client certificate"


def workload_certificates(certs: dict) -> dict:
    """Node metadata naming the proxy's own certificate files (Istio's file-mounted certificates)."""
    return {"TLS_CLIENT_CERT_CHAIN": certs["client_cert"], "TLS_CLIENT_KEY": certs["client_key"],
            "TLS_CLIENT_ROOT_CERT": certs["ca"]}


def test_istio_mutual_presents_the_workload_certificate(serve_router, backends, certs):
    # The backend requires a client certificate signed by the mesh root: only mutual TLS gets through.
    secure = backends("secure", ssl_context=server_ssl_context(certs, require_client_certificate=True))
    port = free_port()
    _, proxy = serve_router(docs_for(port, {"v1": secure}, {"tls": {"mode": "ISTIO_MUTUAL"}}), [port],
                            metadata=workload_certificates(certs))
    status, headers, body = request(port, "/", host=HOST)
    assert status == 200 and headers["x-backend"] == "secure", body
    assert cluster_stat(proxy, "outbound|80||shop.internal", "ssl.handshake") >= 1


def test_istio_mutual_verifies_the_service_account_identity(serve_router, backends, certs):
    # The endpoint runs as service account `shop`: the server must present
    # spiffe://cluster.local/ns/istio-system/sa/shop, which the test server's certificate lacks.
    secure = backends("secure", ssl_context=server_ssl_context(certs, require_client_certificate=True))
    port = free_port()
    docs = docs_for(port, {"v1": secure}, {"tls": {"mode": "ISTIO_MUTUAL"}})
    docs[1] = service_entry("shop", ["shop.internal"], [http_port(80)], endpoints=[
        {"address": "127.0.0.1", "ports": {"http": secure.port}, "serviceAccount": "shop"}])
    _, proxy = serve_router(docs, [port], metadata=workload_certificates(certs))
    assert request(port, "/", host=HOST)[0] == 503
    assert not secure.requests
    assert cluster_stat(proxy, "outbound|80||shop.internal", "ssl.fail_verify_san") >= 1


def test_istio_mutual_without_workload_certificates_is_refused(serve_router, backends):
    # SwiftPilot is not a CA: a proxy that names no certificate files gets no cluster for the
    # rule (fail closed, never plaintext), and the diagnostic names the rule and field.
    plain = backends("plain")
    port = free_port()
    pilot, proxy = serve_router(docs_for(port, {"v1": plain}, {"tls": {"mode": "ISTIO_MUTUAL"}}), [port])
    assert request(port, "/", host=HOST)[0] == 503
    assert not plain.requests
    clusters = [c["cluster"]["name"] for config in proxy.config_dump()["configs"]
                for c in config.get("dynamic_active_clusters", [])]
    assert "outbound|80||shop.internal" not in clusters and clusters, clusters
    diagnostics = pilot.admin("/debug/translationz")[1].decode()
    assert "spec.trafficPolicy.tls.mode" in diagnostics and "TLS_CLIENT_CERT_CHAIN" in diagnostics, diagnostics
