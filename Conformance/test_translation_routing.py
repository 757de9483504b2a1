"""Issue: Istio → Envoy translation for gateways — mirroring, CORS, delegate VirtualServices, exportTo
visibility and DestinationRule lookup order, observed as real traffic through Envoy.
"""
import json
import time

from harness import backend_counts, free_port, request, wait_until
from yaml_snippets import destination_rule, gateway, http_port, route_to, service_entry, virtual_service

HOST = "web.example.com"


def svc(name: str, backend, namespace: str = "istio-system", **extra) -> str:
    return service_entry(name, [f"{name}.internal"], [http_port(80)], namespace=namespace,
                         endpoints=[{"address": "127.0.0.1", "ports": {"http": backend.port}}], **extra)


def test_mirror_copies_requests_to_the_shadow_without_changing_the_answer(serve_router, backends):
    primary, shadow, rare = backends("primary"), backends("shadow"), backends("rare")
    port = free_port()
    docs = [gateway(port), svc("primary", primary), svc("shadow", shadow), svc("rare", rare),
            virtual_service("web", [HOST], http=[
                {"match": [{"uri": {"prefix": "/never"}}], "route": [route_to("primary.internal")],
                 "mirror": {"host": "rare.internal"}, "mirrorPercentage": {"value": 0.0}},
                {"route": [route_to("primary.internal")], "mirror": {"host": "shadow.internal"}}])]
    serve_router(docs, [port])
    assert backend_counts(port, 10, path="/copy", host=HOST) == {"primary": 10}
    wait_until(lambda: len(shadow.requests) == 10, 5, "10 mirrored requests")
    assert shadow.requests[0]["path"] == "/copy"
    assert shadow.requests[0]["headers"]["host"] == HOST, "Istio disables the -shadow host suffix"
    assert backend_counts(port, 10, path="/never", host=HOST) == {"primary": 10}
    time.sleep(0.3)
    assert not rare.requests, "0 % mirrors nothing"


def test_cors_preflight_and_actual_requests(serve_router, backends):
    echo = backends("echo")
    port = free_port()
    cors = {"allowOrigins": [{"exact": "https://app.example"}], "allowMethods": ["GET", "POST"],
            "allowHeaders": ["x-custom"], "exposeHeaders": ["x-backend"], "maxAge": "600s", "allowCredentials": True}
    docs = [gateway(port), svc("echo", echo),
            virtual_service("web", [HOST], http=[{"route": [route_to("echo.internal")], "corsPolicy": cors}])]
    serve_router(docs, [port])
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "x-custom"}
    status, headers, _ = request(port, "/", host=HOST, method="OPTIONS", headers=preflight)
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "x-custom"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-allow-credentials"] == "true"
    assert not echo.requests, "Envoy answers the preflight itself"
    status, headers, _ = request(port, "/", host=HOST, headers={"origin": "https://app.example"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-expose-headers"] == "x-backend"
    status, headers, _ = request(port, "/", host=HOST, headers={"origin": "https://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers


def test_delegate_virtual_service_owns_the_delegated_prefix(serve_router, backends):
    team, other = backends("team"), backends("other")
    port = free_port()
    docs = [gateway(port), svc("team", team, namespace="team"), svc("other", other),
            virtual_service("root", [HOST], http=[
                {"name": "team", "match": [{"uri": {"prefix": "/team"}}], "delegate": {"name": "team-routes", "namespace": "team"}},
                {"name": "gone", "match": [{"uri": {"prefix": "/gone"}}], "delegate": {"name": "no-such-delegate"}},
                {"route": [route_to("other.internal")]}]),
            virtual_service("team-routes", [], gateways=[], namespace="team", http=[
                {"match": [{"uri": {"prefix": "/team/api"}}], "rewrite": {"uri": "/api"}, "route": [route_to("team.internal")]},
                {"match": [{"uri": {"prefix": "/elsewhere"}}], "route": [route_to("team.internal")]}])]
    serve_router(docs, [port])
    status, headers, body = request(port, "/team/api/x", host=HOST)
    assert status == 200 and headers["x-backend"] == "team" and json.loads(body)["path"] == "/api/x"
    assert request(port, "/team/other", host=HOST)[1]["x-backend"] == "other", "outside every delegate match"
    assert request(port, "/elsewhere", host=HOST)[1]["x-backend"] == "other", "delegate matches must lie within the root's"
    assert request(port, "/gone", host=HOST)[1]["x-backend"] == "other", "a missing delegate drops only its rule"


def test_virtual_services_not_exported_to_the_gateway_namespace_do_not_bind(serve_router, backends):
    public, private = backends("public"), backends("private")
    port = free_port()
    docs = [gateway(port), svc("public", public), svc("private", private),
            virtual_service("private", ["private.example.com"], gateways=["istio-system/gw"], namespace="team",
                            exportTo=["."], http=[{"route": [route_to("private.internal")]}]),
            virtual_service("public", ["public.example.com"], gateways=["istio-system/gw"], namespace="team",
                            http=[{"route": [route_to("public.internal")]}])]
    serve_router(docs, [port])
    assert request(port, "/", host="public.example.com")[1]["x-backend"] == "public"
    assert request(port, "/", host="private.example.com")[0] == 404


def test_services_not_exported_to_the_gateway_get_no_cluster(serve_router, backends):
    hidden = backends("hidden")
    port = free_port()
    docs = [gateway(port), svc("hidden", hidden, namespace="team", exportTo=["."]),
            virtual_service("hidden", [HOST], http=[{"route": [route_to("hidden.internal")]}])]
    _, proxy = serve_router(docs, [port])
    status, _, body = request(port, "/", host=HOST)
    assert status == 503, body
    clusters = {c["cluster"]["name"] for config in proxy.config_dump()["configs"]
                for c in config.get("dynamic_active_clusters", [])}
    assert "outbound|80||hidden.internal" not in clusters and "BlackHoleCluster" in clusters


def test_destination_rule_lookup_prefers_the_service_namespace_over_the_root(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()
    endpoints = [{"address": "127.0.0.1", "ports": {"http": v1.port}, "labels": {"version": "v1"}},
                 {"address": "127.0.0.1", "ports": {"http": v2.port}, "labels": {"version": "v2"}}]
    docs = [gateway(port),
            service_entry("web", ["web.internal"], [http_port(80)], endpoints=endpoints, namespace="shop"),
            # The root namespace (the router's) says "pin"; the service's namespace says "v2 only".
            destination_rule("root-default", "web.internal", {"pinned": {"version": "v1"}}, namespace="istio-system"),
            destination_rule("shop-rule", "web.internal", {"pinned": {"version": "v2"}}, namespace="shop"),
            destination_rule("private", "web.internal", {"pinned": {"version": "v1"}}, namespace="elsewhere"),
            virtual_service("web", [HOST], http=[{"route": [route_to("web.internal", subset="pinned")]}])]
    serve_router(docs, [port])
    assert backend_counts(port, 10, host=HOST) == {"v2": 10}
