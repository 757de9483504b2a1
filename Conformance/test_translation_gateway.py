"""Issue: Istio → Envoy translation for gateways — conformance-scenarios.md 1–4, 7, 8, 10, 11, 16–18, 22.

Each test serves Istio YAML through SwiftPilot to a real Envoy router and sends real HTTP traffic to
local echo backends (`x-backend` names the one that answered).
"""
import json
import socket
import time

import pytest

from harness import backend_counts, free_port, request
from yaml_snippets import (destination_rule, gateway, gateway_servers, http_port, route_to, service_entry,
                           virtual_service)

NS = "bookinfo"


def svc(name: str, port: int, backends_by_version: dict, namespace: str = NS, weights: dict | None = None) -> str:
    """A STATIC ServiceEntry `<name>.<ns>.svc.cluster.local:<port>` with one 127.0.0.1 endpoint per backend."""
    endpoints = []
    for version, backend in backends_by_version.items():
        endpoint = {"address": "127.0.0.1", "ports": {"http": backend.port}, "labels": {"app": name, "version": version}}
        if weights and version in weights:
            endpoint["weight"] = weights[version]
        endpoints.append(endpoint)
    return service_entry(name, [f"{name}.{namespace}.svc.cluster.local"], [http_port(port)], endpoints=endpoints,
                         namespace=namespace)


def subsets_rule(name: str, versions, namespace: str = NS) -> str:
    return destination_rule(name, f"{name}.{namespace}.svc.cluster.local", {v: {"version": v} for v in versions},
                            namespace=namespace)


def stat(proxy, name: str) -> int:
    return proxy.stats(name).get(name, 0)


# MARK: - 1–4: gateways and virtual-service binding


def test_gateway_without_virtual_service_answers_404_and_other_ports_refuse(serve_router):
    port, unused = free_port(), free_port()
    _, proxy = serve_router([gateway(port, hosts=["foo.bar"])], [port])
    assert request(port, "/", host="foo.bar")[0] == 404
    route = proxy.route_config(f"http.{port}")["route_config"]
    assert [vh["name"] for vh in route["virtual_hosts"]] == [f"blackhole:{port}"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", unused), timeout=2).close()


def test_bound_server_listens_only_on_its_address(serve_router, backends):
    echo = backends("echo")
    port = free_port()
    docs = [gateway_servers([{"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": ["*"],
                              "bind": "127.0.0.1"}]),
            svc("echo", 80, {"v1": echo}),
            virtual_service("echo", ["echo.example.com"], gateways=["istio-system/gw"], namespace=NS,
                            http=[{"route": [route_to("echo")]}])]
    _, proxy = serve_router(docs)
    proxy.wait_listener(f"127.0.0.1_{port}")
    assert request(port, "/", host="echo.example.com")[1]["x-backend"] == "echo"
    assert proxy.route_config(f"http.{port}.127.0.0.1") is not None


def test_exact_path_on_gateway_host(serve_router, backends):
    productpage = backends("productpage")
    port = free_port()
    vs = virtual_service("bookinfo", ["*"], gateways=["istio-system/gw"], namespace=NS, http=[
        {"match": [{"uri": {"exact": "/productpage"}}], "route": [route_to("productpage", 9080)]}])
    _, proxy = serve_router([gateway(port, hosts=["*"]), svc("productpage", 9080, {"v1": productpage}), vs], [port])
    status, headers, body = request(port, "/productpage", host="foo.bar")
    assert status == 200 and headers["x-backend"] == "productpage", body
    assert request(port, "/other", host="foo.bar")[0] == 404
    assert f"outbound|9080||productpage.{NS}.svc.cluster.local" in json.dumps(proxy.config_dump())


def test_host_not_on_the_gateway_server_gets_404(serve_router, backends):
    productpage = backends("productpage")
    port = free_port()
    vs = virtual_service("bookinfo", ["*"], gateways=["istio-system/gw"], namespace=NS, http=[
        {"match": [{"uri": {"exact": "/productpage"}}], "route": [route_to("productpage", 9080)]}])
    serve_router([gateway(port, hosts=["foo.bar"]), svc("productpage", 9080, {"v1": productpage}), vs], [port])
    assert request(port, "/productpage", host="foo.bar")[0] == 200
    assert request(port, "/productpage", host="bad.bar")[0] == 404


def test_ingress_httpbin_prefixes(serve_router, backends):
    httpbin = backends("httpbin")
    port = free_port()
    vs = virtual_service("httpbin", ["httpbin.example.com"], gateways=["istio-system/gw"], namespace=NS, http=[
        {"match": [{"uri": {"prefix": "/status"}}, {"uri": {"prefix": "/delay"}}],
         "route": [route_to("httpbin", 8000)]}])
    serve_router([gateway(port, hosts=["httpbin.example.com"]), svc("httpbin", 8000, {"v1": httpbin}), vs], [port])
    status, headers, _ = request(port, "/status/200", host="httpbin.example.com")
    assert status == 200 and headers["server"] == "istio-envoy"
    assert request(port, "/delay/1", host="httpbin.example.com")[0] == 200
    assert request(port, "/headers", host="httpbin.example.com")[0] == 404


def test_virtual_services_merge_by_host_on_a_gateway(serve_router, backends):
    a, b = backends("a"), backends("b")
    port = free_port()
    docs = [
        gateway(port, hosts=["*.example.com"]),
        svc("a", 80, {"v1": a}), svc("b", 80, {"v1": b}),
        virtual_service("a", ["a.example.com"], gateways=["istio-system/gw"], namespace=NS,
                        http=[{"match": [{"uri": {"prefix": "/a"}}], "route": [route_to("a")]}]),
        virtual_service("b", ["b.example.com", "a.example.com"], gateways=["istio-system/gw"], namespace=NS,
                        http=[{"match": [{"uri": {"prefix": "/b"}}], "route": [route_to("b")]}]),
    ]
    _, proxy = serve_router(docs, [port])
    assert request(port, "/a", host="a.example.com")[1]["x-backend"] == "a"
    assert request(port, "/b", host="a.example.com")[1]["x-backend"] == "b", "routes of VS b merged into a.example.com"
    assert request(port, "/b", host="b.example.com")[1]["x-backend"] == "b"
    assert request(port, "/a", host="b.example.com")[0] == 404, "b.example.com is a separate vhost"
    assert request(port, "/a", host="c.example.com")[0] == 404
    names = [vh["name"] for vh in proxy.route_config(f"http.{port}")["route_config"]["virtual_hosts"]]
    assert names == [f"a.example.com:{port}", f"b.example.com:{port}"]


# MARK: - 7, 8: header routing and weighted shifting


def reviews_docs(port: int, versions: dict, http: list) -> list[str]:
    return [gateway(port, hosts=["*"]), svc("reviews", 9080, versions), subsets_rule("reviews", versions),
            virtual_service("reviews", ["reviews.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]


def test_header_based_routing_to_subsets(serve_router, backends):
    v1, v2, v3 = backends("v1"), backends("v2"), backends("v3")
    port = free_port()
    http = [{"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [route_to("reviews", subset="v2")]},
            {"route": [route_to("reviews", subset="v1")]}]
    serve_router(reviews_docs(port, {"v1": v1, "v2": v2, "v3": v3}, http), [port])
    assert backend_counts(port, 20, host="reviews.example.com", headers={"end-user": "jason"}) == {"v2": 20}
    assert backend_counts(port, 20, host="reviews.example.com") == {"v1": 20}
    assert backend_counts(port, 20, host="reviews.example.com", headers={"end-user": "bob"}) == {"v1": 20}


@pytest.mark.parametrize("split", [(50, 50), (80, 20), (90, 10)])
def test_weighted_shifting(serve_router, backends, split):
    v1, v3 = backends("v1"), backends("v3")
    port = free_port()
    http = [{"route": [route_to("reviews", subset="v1", weight=split[0]), route_to("reviews", subset="v3", weight=split[1])]}]
    serve_router(reviews_docs(port, {"v1": v1, "v3": v3}, http), [port])
    n = 300
    counts = backend_counts(port, n, host="reviews.example.com")
    share = counts.get("v1", 0) / n
    # Binomial: 4 standard deviations of the expected share.
    p = split[0] / 100
    assert abs(share - p) <= 4 * (p * (1 - p) / n) ** 0.5, counts
    assert set(counts) == {"v1", "v3"}, counts


def test_zero_weight_never_receives_and_single_destination_gets_all(serve_router, backends):
    v1, v2, v3 = backends("v1"), backends("v2"), backends("v3")
    port = free_port()
    http = [{"match": [{"uri": {"prefix": "/zero"}}],
             "route": [route_to("reviews", subset="v1", weight=100), route_to("reviews", subset="v2", weight=0)]},
            {"route": [route_to("reviews", subset="v3", weight=10)]}]
    serve_router(reviews_docs(port, {"v1": v1, "v2": v2, "v3": v3}, http), [port])
    assert backend_counts(port, 30, path="/zero", host="reviews.example.com") == {"v1": 30}
    assert backend_counts(port, 30, path="/", host="reviews.example.com") == {"v3": 30}


# MARK: - 10, 11: faults and timeouts


def test_fault_abort_for_jason_only(serve_router, backends):
    ratings = backends("ratings")
    port = free_port()
    http = [{"match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 100.0}}},
             "route": [route_to("ratings", subset="v1")]},
            {"match": [{"uri": {"prefix": "/nopercent"}}],
             "fault": {"abort": {"httpStatus": 500}}, "route": [route_to("ratings", subset="v1")]},
            {"route": [route_to("ratings", subset="v1")]}]
    docs = [gateway(port, hosts=["*"]), svc("ratings", 9080, {"v1": ratings}), subsets_rule("ratings", ["v1"]),
            virtual_service("ratings", ["ratings.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    _, proxy = serve_router(docs, [port])
    for _ in range(10):
        assert request(port, "/", host="ratings.example.com", headers={"end-user": "jason"})[0] == 500
    assert not ratings.requests, "aborted requests must not reach the backend"
    assert stat(proxy, f"http.outbound_0.0.0.0_{port}.fault.aborts_injected") == 10
    assert backend_counts(port, 10, host="ratings.example.com") == {"ratings": 10}
    assert backend_counts(port, 10, path="/nopercent", host="ratings.example.com") == {"ratings": 10}, \
        "an abort with no percentage aborts nothing"


def test_fault_delay_percentage(serve_router, backends):
    ratings = backends("ratings")
    port = free_port()
    http = [{"match": [{"uri": {"prefix": "/fast"}}], "route": [route_to("ratings")]},
            {"fault": {"delay": {"fixedDelay": "0.5s", "percentage": {"value": 100.0}}},
             "route": [route_to("ratings")]}]
    docs = [gateway(port, hosts=["*"]), svc("ratings", 9080, {"v1": ratings}),
            virtual_service("ratings", ["ratings.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    _, proxy = serve_router(docs, [port])
    start = time.monotonic()
    assert request(port, "/fast", host="ratings.example.com")[0] == 200
    assert time.monotonic() - start < 0.3
    start = time.monotonic()
    assert request(port, "/", host="ratings.example.com")[0] == 200
    assert time.monotonic() - start >= 0.45
    assert stat(proxy, f"http.outbound_0.0.0.0_{port}.fault.delays_injected") == 1


def test_request_timeout_gives_504_and_no_timeout_waits(serve_router, backends):
    slow = backends("slow", delay=2.0)
    port = free_port()
    http = [{"match": [{"uri": {"prefix": "/timeout"}}], "timeout": "0.5s", "route": [route_to("slow")]},
            {"route": [route_to("slow")]}]
    docs = [gateway(port, hosts=["*"]), svc("slow", 8000, {"v1": slow}),
            virtual_service("slow", ["slow.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    _, proxy = serve_router(docs, [port])
    start = time.monotonic()
    status, _, body = request(port, "/timeout", host="slow.example.com")
    elapsed = time.monotonic() - start
    assert status == 504 and body == b"upstream request timeout", body
    assert 0.4 <= elapsed < 1.5, elapsed
    cluster = f"outbound|8000||slow.{NS}.svc.cluster.local"
    assert stat(proxy, f"cluster.{cluster}.upstream_rq_timeout") == 1
    start = time.monotonic()
    assert request(port, "/", host="slow.example.com")[0] == 200, "Istio's default is no route timeout"
    assert time.monotonic() - start >= 2.0


def test_timeout_override_header_is_not_trusted_from_edge_clients(serve_router, backends):
    # Scenario 11's `x-envoy-upstream-rq-timeout-ms` override applies to internal (mesh) callers. On a
    # gateway (use_remote_address, no internal address ranges) every client is external and Envoy
    # ignores x-envoy-* control headers, so an outside client cannot shorten or stretch timeouts.
    slow = backends("slow", delay=1.0)
    port = free_port()
    http = [{"match": [{"uri": {"prefix": "/bounded"}}], "timeout": "0.5s", "route": [route_to("slow")]},
            {"route": [route_to("slow")]}]
    docs = [gateway(port, hosts=["*"]), svc("slow", 8000, {"v1": slow}),
            virtual_service("slow", ["slow.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    serve_router(docs, [port])
    assert request(port, "/", host="slow.example.com", headers={"x-envoy-upstream-rq-timeout-ms": "200"})[0] == 200
    status, _, _ = request(port, "/bounded", host="slow.example.com", headers={"x-envoy-upstream-rq-timeout-ms": "5000"})
    assert status == 504


# MARK: - 16: redirect, direct response, rewrite


def test_redirects_direct_response_and_rewrites(serve_router, backends):
    echo = backends("echo")
    port = free_port()
    http = [
        {"match": [{"uri": {"prefix": "/old"}}], "redirect": {"uri": "/new", "authority": "example.org"}},
        {"match": [{"uri": {"prefix": "/found"}}], "redirect": {"uri": "/new", "redirectCode": 302}},
        {"match": [{"uri": {"prefix": "/secure"}}], "redirect": {"scheme": "https"}},
        {"match": [{"uri": {"prefix": "/teapot"}}], "directResponse": {"status": 418, "body": {"string": "x"}}},
        {"match": [{"uri": {"prefix": "/v1/"}}], "rewrite": {"uri": "/v2/"}, "route": [route_to("echo")]},
        {"match": [{"uri": {"prefix": "/host"}}], "rewrite": {"authority": "b.example"}, "route": [route_to("echo")]},
        {"match": [{"uri": {"regex": "/re/[0-9]+/.*"}}],
         "rewrite": {"uriRegexRewrite": {"match": "^/re/([0-9]+)/(.*)$", "rewrite": "/items/\\2/\\1"}}, "route": [route_to("echo")]},
    ]
    docs = [gateway(port, hosts=["*"]), svc("echo", 80, {"v1": echo}),
            virtual_service("misc", ["misc.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    serve_router(docs, [port])
    status, headers, _ = request(port, "/old", host="misc.example.com")
    assert status == 301 and headers["location"] == "http://example.org/new"
    status, headers, _ = request(port, "/found", host="misc.example.com")
    assert status == 302 and headers["location"] == "http://misc.example.com/new"
    status, headers, _ = request(port, "/secure/x", host="misc.example.com")
    assert status == 301 and headers["location"].startswith("https://misc.example.com"), headers["location"]
    status, _, body = request(port, "/teapot", host="misc.example.com")
    assert (status, body) == (418, b"x")
    status, _, body = request(port, "/v1/items?q=1", host="misc.example.com")
    assert status == 200 and json.loads(body)["path"] == "/v2/items?q=1"
    status, _, body = request(port, "/host", host="misc.example.com")
    assert status == 200 and json.loads(body)["headers"]["host"] == "b.example"
    status, _, body = request(port, "/re/42/shoes", host="misc.example.com")
    assert status == 200 and json.loads(body)["path"] == "/items/shoes/42", body


def test_retries_follow_istio_defaults_and_the_virtual_service(serve_router, backends):
    # Each flaky backend answers 503 to its first two requests.
    custom, default = backends("custom", failures=2), backends("default", failures=2)
    healthy = backends("healthy")
    dead = free_port()  # nothing listens: connecting fails
    port = free_port()
    flaky_and_dead = service_entry("mixed", ["mixed.internal"], [http_port(80)], endpoints=[
        {"address": "127.0.0.1", "ports": {"http": healthy.port}}, {"address": "127.0.0.1", "ports": {"http": dead}}])
    http = [
        {"match": [{"uri": {"prefix": "/custom"}}], "retries": {"attempts": 3, "retryOn": "503"}, "route": [route_to("custom")]},
        {"match": [{"uri": {"prefix": "/default"}}], "route": [route_to("default")]},
        {"match": [{"uri": {"prefix": "/mixed-default"}}], "route": [route_to("mixed.internal", 80)]},
        {"match": [{"uri": {"prefix": "/mixed-none"}}], "retries": {"attempts": 0}, "route": [route_to("mixed.internal", 80)]},
    ]
    docs = [gateway(port, hosts=["*"]), svc("custom", 80, {"v1": custom}), svc("default", 80, {"v1": default}),
            flaky_and_dead, destination_rule("mixed", "mixed.internal", trafficPolicy={"loadBalancer": {"simple": "ROUND_ROBIN"}}),
            virtual_service("retry", ["retry.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http),
            # Every route here has Istio's default policy: SwiftPilot sends it once, on the virtual host.
            virtual_service("shared", ["shared.example.com"], gateways=["istio-system/gw"], namespace=NS, http=[
                {"match": [{"uri": {"prefix": "/a"}}], "route": [route_to("mixed.internal", 80)]},
                {"route": [route_to("mixed.internal", 80)]}])]
    _, proxy = serve_router(docs, [port])
    # `retryOn: "503"` with 3 attempts: two 503s are retried, the third try answers.
    assert request(port, "/custom", host="retry.example.com")[0] == 200
    assert len(custom.requests) == 3
    # Istio's default policy does not retry a 503 answer ...
    assert request(port, "/default", host="retry.example.com")[0] == 503
    assert len(default.requests) == 1
    # ... but retries a failed connection on another host: every request reaches the healthy endpoint.
    assert [request(port, "/mixed-default", host="retry.example.com")[0] for _ in range(10)] == [200] * 10
    # `attempts: 0` turns retries off: round robin sends some requests to the dead endpoint.
    statuses = [request(port, "/mixed-none", host="retry.example.com")[0] for _ in range(10)]
    assert statuses.count(503) >= 3 and statuses.count(200) >= 3, statuses
    # The virtual host's policy applies to routes that have none: a failed connection is retried.
    hosts = {vh["domains"][0]: vh for vh in proxy.route_config(f"http.{port}")["route_config"]["virtual_hosts"]}
    assert hosts["shared.example.com"]["retry_policy"]["num_retries"] == 2
    assert not any("retry_policy" in route["route"] for route in hosts["shared.example.com"]["routes"])
    assert "retry_policy" not in hosts["retry.example.com"]
    for path in ("/a", "/b"):
        assert [request(port, path, host="shared.example.com")[0] for _ in range(10)] == [200] * 10, path


# MARK: - 17, 18: match types and header manipulation


def test_match_types(serve_router, backends):
    hit, other = backends("hit"), backends("other")
    port = free_port()
    http = [
        {"match": [{"authority": {"prefix": "alias."}}], "route": [route_to("hit")]},
        # Istio drops a match for another port from this server's routes, so the next rule answers.
        {"match": [{"port": 1, "uri": {"prefix": "/port"}}], "route": [route_to("other")]},
        {"match": [{"port": port, "uri": {"prefix": "/port"}}], "route": [route_to("hit")]},
        {"match": [{"uri": {"prefix": "/get"}, "method": {"exact": "GET"}}], "route": [route_to("hit")]},
        {"match": [{"uri": {"prefix": "/query"}, "queryParams": {"debug": {"exact": "1"}}}], "route": [route_to("hit")]},
        {"match": [{"uri": {"exact": "/Foo"}, "ignoreUriCase": True}], "route": [route_to("hit")]},
        {"match": [{"uri": {"prefix": "/canary"}, "withoutHeaders": {"x-canary": {}}}], "route": [route_to("hit")]},
        {"match": [{"uri": {"regex": "/re/[0-9]+"}}], "route": [route_to("hit")]},
        {"match": [{"uri": {"prefix": "/get"}}, {"uri": {"prefix": "/query"}}, {"uri": {"prefix": "/canary"}}],
         "route": [route_to("other")]},
    ]
    docs = [gateway(port, hosts=["*"]), svc("hit", 80, {"v1": hit}), svc("other", 80, {"v1": other}),
            virtual_service("match", ["match.example.com", "alias.example.com"], gateways=["istio-system/gw"],
                            namespace=NS, http=http)]
    serve_router(docs, [port])

    def who(path, method="GET", headers=None, host="match.example.com"):
        status, response_headers, _ = request(port, path, host=host, method=method, headers=headers)
        return response_headers.get("x-backend", status)

    assert who("/anything", host="alias.example.com") == "hit" and who("/anything") == 404
    assert who("/port") == "hit"

    assert who("/get") == "hit" and who("/get", method="POST") == "other"
    assert who("/query?debug=1") == "hit" and who("/query?debug=2") == "other" and who("/query") == "other"
    assert who("/foo") == "hit" and who("/FOO") == "hit" and who("/foo/bar") == 404
    assert who("/canary") == "hit" and who("/canary", headers={"x-canary": "yes"}) == "other"
    assert who("/re/123") == "hit" and who("/re/abc") == 404


def test_header_operations_and_per_destination_headers(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()
    http = [{
        "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-b"]}, "response": {"add": {"x-c": "2"}}},
        "route": [route_to("reviews", subset="v1", weight=50, headers={"response": {"set": {"x-dest": "v1"}}}),
                  route_to("reviews", subset="v2", weight=50, headers={"request": {"set": {"x-to": "v2"}}})],
    }, ]
    serve_router(reviews_docs(port, {"v1": v1, "v2": v2}, http), [port])
    seen = set()
    for _ in range(40):
        status, headers, body = request(port, "/", host="reviews.example.com", headers={"x-b": "gone", "x-a": "0"})
        assert status == 200
        echoed = json.loads(body)["headers"]
        assert echoed["x-a"] == "1" and "x-b" not in echoed
        assert headers["x-c"] == "2"
        backend = headers["x-backend"]
        seen.add(backend)
        assert (headers.get("x-dest") == "v1") == (backend == "v1"), headers
        assert (echoed.get("x-to") == "v2") == (backend == "v2"), echoed
    assert seen == {"v1", "v2"}


def test_single_destination_headers_apply(serve_router, backends):
    echo = backends("echo")
    port = free_port()
    http = [{"route": [route_to("echo", headers={"request": {"add": {"x-single": "yes"}},
                                                 "response": {"set": {"x-single-response": "yes"}}})]}]
    docs = [gateway(port, hosts=["*"]), svc("echo", 80, {"v1": echo}),
            virtual_service("echo", ["echo.example.com"], gateways=["istio-system/gw"], namespace=NS, http=http)]
    serve_router(docs, [port])
    status, headers, body = request(port, "/", host="echo.example.com")
    assert status == 200 and json.loads(body)["headers"]["x-single"] == "yes"
    assert headers["x-single-response"] == "yes"


# MARK: - 22: ServiceEntry resolutions


def test_dns_service_entry_resolves_hostname(serve_router, backends):
    # `*.localhost` resolves to loopback in Envoy's c-ares resolver (RFC 6761); a bare `localhost`
    # would be taken as a short name (`localhost.<ns>.svc.cluster.local`) by a VirtualService.
    echo, named = backends("echo"), backends("named")
    port = free_port()
    docs = [gateway(port, hosts=["*"]),
            service_entry("local-dns", ["echo.localhost"], [http_port(80, target_port=echo.port)], resolution="DNS"),
            service_entry("named-endpoint", ["named.example.test"], [http_port(80)], resolution="DNS",
                          endpoints=[{"address": "localhost", "ports": {"http": named.port}}]),
            virtual_service("dns", ["dns.example.com"], http=[{"route": [route_to("echo.localhost", 80)]}]),
            virtual_service("named", ["named.example.com"], http=[{"route": [route_to("named.example.test", 80)]}])]
    _, proxy = serve_router(docs, [port])
    status, headers, _ = request(port, "/", host="dns.example.com")
    assert status == 200 and headers["x-backend"] == "echo"
    status, headers, _ = request(port, "/", host="named.example.com")
    assert status == 200 and headers["x-backend"] == "named", "endpoint hostnames are resolved"
    clusters = [c["cluster"] for config in proxy.config_dump()["configs"]
                for c in config.get("dynamic_active_clusters", [])]
    dns = next(c for c in clusters if c["name"] == "outbound|80||echo.localhost")
    assert dns["cluster_type"]["name"] == "envoy.clusters.dns"
    endpoint = dns["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": "echo.localhost", "port_value": echo.port}


def test_static_service_entry_with_workload_entries_subsets_and_weights(serve_router, backends):
    v1, v2 = backends("v1"), backends("v2")
    port = free_port()

    def workload(name, backend, version, weight):
        from yaml_snippets import resource
        return resource("WorkloadEntry", name, {"address": "127.0.0.1", "ports": {"http": backend.port},
                                                 "labels": {"app": "ratings", "version": version}, "weight": weight}, NS)

    docs = [gateway(port, hosts=["*"]),
            service_entry("ratings", [f"ratings.{NS}.svc.cluster.local"], [http_port(9080)], namespace=NS,
                          workloadSelector={"labels": {"app": "ratings"}}),
            workload("ratings-v1", v1, "v1", 3), workload("ratings-v2", v2, "v2", 1),
            subsets_rule("ratings", ["v1", "v2"]),
            virtual_service("ratings", ["ratings.example.com"], gateways=["istio-system/gw"], namespace=NS, http=[
                {"match": [{"uri": {"prefix": "/v2"}}], "route": [route_to("ratings", subset="v2")]},
                {"route": [route_to("ratings")]}])]
    serve_router(docs, [port])
    assert backend_counts(port, 20, path="/v2", host="ratings.example.com") == {"v2": 20}
    n = 400
    counts = backend_counts(port, n, host="ratings.example.com")
    share = counts.get("v1", 0) / n
    assert abs(share - 0.75) <= 4 * (0.75 * 0.25 / n) ** 0.5, counts


def test_none_resolution_on_a_router_is_an_empty_eds_cluster(serve_router):
    port = free_port()
    docs = [gateway(port, hosts=["*"]),
            service_entry("passthrough", ["external.example.org"], [http_port(80)], resolution="NONE"),
            virtual_service("none", ["none.example.com"], http=[{"route": [route_to("external.example.org", 80)]}])]
    _, proxy = serve_router(docs, [port])
    status, _, body = request(port, "/", host="none.example.com")
    assert status == 503 and body == b"no healthy upstream", body
    clusters = [c["cluster"] for config in proxy.config_dump()["configs"]
                for c in config.get("dynamic_active_clusters", [])]
    assert next(c for c in clusters if c["name"] == "outbound|80||external.example.org")["type"] == "EDS"
