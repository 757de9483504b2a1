"""Issue: Istio → Envoy translation for gateways — every feature at once: what SwiftPilot serves parses
with the official Envoy protos (no unknown fields, byte-identical re-serialisation, nested Anys too)
and a real Envoy 1.40 (fail-on-deprecated) accepts every update.
"""
from harness import free_port, make_certificates, wait_until
from xds_client import LDS, RDS, fetch_router_config, roundtrip_problems, unpack
from yaml_snippets import (destination_rule, gateway_servers, http_port, route_to, service_entry,
                           virtual_service)


def everything(workdir) -> tuple[list[str], list[int]]:
    certs = make_certificates(workdir / "certs")
    http, https, passthrough, tcp = free_port(), free_port(), free_port(), free_port()
    tls = {"mode": "SIMPLE", "serverCertificate": certs["server_cert"], "privateKey": certs["server_key"]}
    docs = [
        gateway_servers([
            {"port": {"number": http, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
            {"port": {"number": https, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": tls},
            {"port": {"number": https, "name": "https-m", "protocol": "HTTPS"}, "hosts": ["m.example.com"],
             "tls": {**tls, "mode": "MUTUAL", "caCertificates": certs["ca"]}},
            {"port": {"number": passthrough, "name": "tls", "protocol": "TLS"}, "hosts": ["*.example.com"],
             "tls": {"mode": "PASSTHROUGH"}},
            {"port": {"number": tcp, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"]},
        ]),
        service_entry("web", ["web.internal"], [http_port(80), http_port(81, name="grpc", protocol="GRPC")],
                      endpoints=[{"address": "127.0.0.1", "ports": {"http": 1}, "labels": {"version": "v1"},
                                  "locality": "eu/west/a"},
                                 {"address": "127.0.0.2", "ports": {"http": 2}, "labels": {"version": "v2"}, "weight": 3}]),
        service_entry("dns", ["dns.example.test"], [http_port(80)], resolution="DNS_ROUND_ROBIN"),
        service_entry("none", ["none.example.test"], [http_port(80)], resolution="NONE"),
        destination_rule("web", "web.internal", {
            "v1": {"version": "v1"},
            "v2": {"labels": {"version": "v2"}, "trafficPolicy": {
                "loadBalancer": {"consistentHash": {"maglev": {"tableSize": 65537}, "httpCookie": {"name": "s", "ttl": "10s"}}},
                "tls": {"mode": "MUTUAL", "clientCertificate": certs["client_cert"], "privateKey": certs["client_key"],
                        "caCertificates": certs["ca"], "subjectAltNames": ["localhost"]}}},
        }, trafficPolicy={
            "loadBalancer": {"consistentHash": {"httpHeaderName": "x-user", "ringHash": {"minimumRingSize": 2048}},
                             "localityLbSetting": {"distribute": [{"from": "eu/*", "to": {"eu/*": 100}}]}},
            "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "2s", "maxConnectionDuration": "600s",
                                       "tcpKeepalive": {"probes": 3, "time": "60s", "interval": "10s"}},
                               "http": {"http1MaxPendingRequests": 5, "http2MaxRequests": 6, "maxRetries": 2,
                                        "maxRequestsPerConnection": 7, "idleTimeout": "30s", "maxConcurrentStreams": 8}},
            "outlierDetection": {"consecutive5xxErrors": 3, "consecutiveGatewayErrors": 2, "interval": "5s",
                                 "baseEjectionTime": "30s", "maxEjectionPercent": 50, "minHealthPercent": 10,
                                 "splitExternalLocalOriginErrors": True, "consecutiveLocalOriginFailures": 4},
            "tls": {"mode": "SIMPLE", "caCertificates": certs["ca"], "sni": "localhost"},
            "retryBudget": {"percent": 30, "minRetryConcurrency": 5},
            "portLevelSettings": [{"port": {"number": 81},
                                   "loadBalancer": {"simple": "ROUND_ROBIN", "warmup": {"duration": "30s"}}}]}),
        virtual_service("web", ["*", "a.example.com", "m.example.com"], http=[
            {"name": "rich", "match": [{"uri": {"prefix": "/rich"}, "headers": {"x-a": {"regex": "a.*"}},
                                         "withoutHeaders": {"x-b": {"exact": "1"}}, "queryParams": {"q": {"prefix": "p"}},
                                         "method": {"exact": "GET"}, "ignoreUriCase": True}],
             "route": [route_to("web.internal", 80, subset="v1", weight=70,
                                headers={"request": {"set": {"x-dest": "v1"}}, "response": {"remove": ["x-r"]}}),
                       route_to("web.internal", 80, subset="v2", weight=30)],
             "headers": {"request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]}},
             "timeout": "3s", "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx,503,reset"},
             "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 0.1}},
                       "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 0.1}}},
             "mirror": {"host": "web.internal", "subset": "v2"}, "mirrorPercentage": {"value": 5.0},
             "corsPolicy": {"allowOrigins": [{"exact": "https://x.example"}], "allowMethods": ["GET"], "maxAge": "60s",
                            "allowCredentials": True}},
            {"match": [{"uri": {"regex": "/re/.*"}}], "rewrite": {"uriRegexRewrite": {"match": "/re/(.*)", "rewrite": "/\\1"}},
             "route": [route_to("dns.example.test", 80)]},
            {"match": [{"uri": {"prefix": "/redirect"}}], "redirect": {"uri": "/new", "scheme": "https", "port": 8443,
                                                                       "redirectCode": 308}},
            {"match": [{"uri": {"exact": "/teapot"}}], "directResponse": {"status": 418, "body": {"string": "x"}}},
            {"route": [route_to("none.example.test", 80)]},
        ]),
        virtual_service("l4", ["*"], tls=[{"match": [{"sniHosts": ["pass.example.com"]}], "route": [route_to("web.internal", 80)]}],
                        tcp=[{"route": [route_to("web.internal", 80, weight=50), route_to("dns.example.test", 80, weight=50)]}]),
    ]
    return docs, [http, https, passthrough, tcp]


def test_every_translated_feature_roundtrips_through_the_official_protos(workdir, config_dir, swiftpilot):
    docs, _ = everything(workdir)
    (config_dir / "mesh.yaml").write_text("---\n".join(docs))
    pilot = swiftpilot("--examples-dir", str(config_dir))
    got = {response.type_url: list(response.resources) for response in fetch_router_config(pilot.xds_port)}
    assert len(got) == 4
    problems = [p for resources in got.values() for r in resources for p in roundtrip_problems(r)]
    assert not problems, problems
    routes = {unpack(r).name for r in got[RDS]}
    assert len(routes) == 3 and any(name.startswith("https.") for name in routes), routes
    chains = [c for listener in map(unpack, got[LDS]) for c in listener.filter_chains]
    assert {f.name for c in chains for f in c.filters} == {"envoy.filters.network.http_connection_manager",
                                                           "envoy.filters.network.tcp_proxy"}


def test_envoy_accepts_every_translated_feature(workdir, serve_router):
    docs, ports = everything(workdir)
    _, proxy = serve_router(docs, ports)
    stats = proxy.stats("update_")
    rejected = {k: v for k, v in stats.items() if k.endswith("update_rejected")}
    assert rejected and all(v == 0 for v in rejected.values()), rejected
    assert stats.get("cluster_manager.cds.update_success", 0) >= 1
    assert stats.get("listener_manager.lds.update_success", 0) >= 1
    wait_until(lambda: len(proxy.active_listeners()) == 4, 10, "all four listeners active")
