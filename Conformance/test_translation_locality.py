"""Issue: Istio → Envoy translation for gateways — locality failover through a real Envoy.

The router Envoy's node has a locality; the service's endpoints (local HTTP backends) sit in other
localities. With outlier detection, all traffic stays on the highest-priority endpoint while it
answers; once it is stopped (and ejected), traffic moves to the next priority that
`localityLbSetting` chose — never to a lower one.
"""
from harness import backend_counts, free_port, wait_until
from yaml_snippets import destination_rule, gateway, http_port, resource, route_to, service_entry, virtual_service

HOST = "shop.example.com"
PROXY_LOCALITY = "us-east/a/1"
# Ejected endpoints stay out for the rest of the test; a refused connection counts as a 5xx.
OUTLIER_DETECTION = {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "30s", "maxEjectionPercent": 100}


def locality_docs(port: int, endpoints: list[dict], locality_lb_setting: dict, selector: dict | None = None) -> list[str]:
    """Gateway on `port` routing everything to `shop.internal:80`; `endpoints` are inline (or, with
    `selector`, selected WorkloadEntries); a DR with outlier detection and `locality_lb_setting`."""
    docs = [gateway(port, hosts=["*"]),
            virtual_service("shop", [HOST], http=[{"route": [route_to("shop.internal", 80)]}]),
            destination_rule("shop", "shop.internal", trafficPolicy={
                "outlierDetection": OUTLIER_DETECTION, "loadBalancer": {"localityLbSetting": locality_lb_setting}})]
    if selector is None:
        docs.append(service_entry("shop", ["shop.internal"], [http_port(80)], endpoints=endpoints))
    else:
        docs.append(service_entry("shop", ["shop.internal"], [http_port(80)], workloadSelector={"labels": selector}))
        docs += [resource("WorkloadEntry", f"shop-{index}", entry) for index, entry in enumerate(endpoints)]
    return docs


def endpoint(backend, locality: str, **labels) -> dict:
    return {"address": "127.0.0.1", "ports": {"http": backend.port}, "locality": locality, "labels": labels}


def stop(backend):
    """Stops a backend mid-test: its port then refuses connections."""
    backend.__exit__(None, None, None)


def wait_for_only(port: int, name: str, timeout: float = 20) -> None:
    """Waits (bounded) until ten requests in a row are all answered by `name`."""
    wait_until(lambda: backend_counts(port, 10, host=HOST) == {name: 10}, timeout, f"all traffic on {name}", interval=0.2)


def test_failover_goes_to_the_named_region_before_any_other(serve_router, backends):
    local, failover, other = backends("us-east"), backends("eu-west"), backends("us-west")
    port = free_port()
    setting = {"failover": [{"from": "us-east", "to": "eu-west"}]}
    endpoints = [endpoint(local, "us-east/a/1"), endpoint(failover, "eu-west/a/1"), endpoint(other, "us-west/a/1")]
    _, proxy = serve_router(locality_docs(port, endpoints, setting), [port], locality=PROXY_LOCALITY)

    assert backend_counts(port, 20, host=HOST) == {"us-east": 20}, "the proxy's own locality takes all traffic"
    stop(local)
    wait_for_only(port, "eu-west")
    assert backend_counts(port, 20, host=HOST) == {"eu-west": 20}
    assert other.requests == [], "us-west is only the last resort"

    key = "cluster.outbound|80||shop.internal.outlier_detection.ejections_enforced_total"
    assert proxy.stats(key).get(key, 0) >= 1, "the local endpoint was ejected, not just skipped"


def test_without_failover_the_other_regions_share_one_priority(serve_router, backends):
    local, east, west = backends("us-east"), backends("eu-west"), backends("us-west")
    port = free_port()
    endpoints = [endpoint(local, "us-east/a/1"), endpoint(east, "eu-west/a/1"), endpoint(west, "us-west/a/1")]
    serve_router(locality_docs(port, endpoints, {"enabled": True}), [port], locality=PROXY_LOCALITY)
    assert backend_counts(port, 10, host=HOST) == {"us-east": 10}
    stop(local)
    wait_until(lambda: set(backend_counts(port, 20, host=HOST)) == {"eu-west", "us-west"}, 20,
               "traffic spread over both remote regions", interval=0.2)


def test_disabled_locality_load_balancing_ignores_localities(serve_router, backends):
    local, remote = backends("us-east"), backends("eu-west")
    port = free_port()
    setting = {"enabled": False, "failover": [{"from": "us-east", "to": "eu-west"}]}
    endpoints = [endpoint(local, "us-east/a/1"), endpoint(remote, "eu-west/a/1")]
    serve_router(locality_docs(port, endpoints, setting), [port], locality=PROXY_LOCALITY)
    assert set(backend_counts(port, 30, host=HOST)) == {"us-east", "eu-west"}


def test_failover_priority_labels_rank_before_topology(serve_router, backends):
    # failoverPriority [tier, region]: gold in the proxy's region first, then gold elsewhere, and
    # only then silver — although the silver endpoint shares the proxy's region.
    gold_local, gold_remote, silver_local = backends("gold-us-east"), backends("gold-eu-west"), backends("silver-us-east")
    port = free_port()
    setting = {"failoverPriority": ["tier", "topology.kubernetes.io/region"]}
    entries = [endpoint(gold_local, "us-east/b/1", app="shop", tier="gold"),
               endpoint(gold_remote, "eu-west/a/1", app="shop", tier="gold"),
               endpoint(silver_local, "us-east/a/1", app="shop", tier="silver")]
    serve_router(locality_docs(port, entries, setting, selector={"app": "shop"}), [port], locality=PROXY_LOCALITY,
                 labels={"istio": "ingressgateway", "tier": "gold"})

    assert backend_counts(port, 20, host=HOST) == {"gold-us-east": 20}
    stop(gold_local)
    wait_for_only(port, "gold-eu-west")
    assert backend_counts(port, 20, host=HOST) == {"gold-eu-west": 20}
    assert silver_local.requests == []
    stop(gold_remote)
    wait_for_only(port, "silver-us-east")
