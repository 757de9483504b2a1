"""A real Envoy on delta ADS gets its routes over VHDS: the route configuration comes without virtual
hosts, each virtual host is its own resource, and a VirtualService change sends that host alone."""
import time

from harness import free_port, request, wait_until
from test_ads_protocol import virtual_service
from yaml_snippets import gateway, static_service

HOSTS = ["app.example.com", "news.example.com", "shop.example.com"]


def vs_for(host: str, destination: str) -> str:
    return virtual_service(host, "/", destination, name=host.split(".")[0])


def write_mesh(config_dir, port, blue, green, destinations: dict[str, str]):
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway(port),
        static_service("blue.example.com", 80, [("127.0.0.1", blue.port, {})], name="blue"),
        static_service("green.example.com", 80, [("127.0.0.1", green.port, {})], name="green"),
        *[vs_for(host, f"{destinations[host]}.example.com") for host in HOSTS],
    ]))


def backend_of(port: int, host: str) -> str | None:
    status, headers, _ = request(port, "/", host=host)
    return headers.get("x-backend") if status == 200 else None


def vhds_requests(pilot) -> list[str]:
    """SwiftPilot's debug log lines of the VirtualHost requests Envoy sent."""
    return [line for line in pilot.output().splitlines() if "request" in line and "envoy.config.route.v3.VirtualHost" in line]


def test_envoy_on_delta_ads_routes_over_vhds_and_a_virtual_service_change_sends_one_virtual_host(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port = free_port()
    write_mesh(config_dir, port, blue, green, {host: "blue" for host in HOSTS})
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot, delta=True)
    proxy.wait_listener(f"0.0.0.0_{port}")
    for host in HOSTS:
        wait_until(lambda: backend_of(port, host) == "blue", 10, f"traffic for {host} to blue over VHDS")

    # What Envoy asked for: its VHDS subscription, as SwiftPilot logged it.
    print("\n".join(vhds_requests(pilot)))
    assert vhds_requests(pilot), "Envoy subscribed to VirtualHost resources"

    # The route configuration names VHDS over ADS; Envoy's virtual hosts came from VHDS, named
    # <route configuration>/<virtual host>.
    route = proxy.route_config(f"http.{port}")["route_config"]
    assert "ads" in route["vhds"]["config_source"], route["vhds"]
    assert sorted(host["name"] for host in route["virtual_hosts"]) == [f"http.{port}/{host}:{port}" for host in HOSTS]
    status = pilot.syncz()[0]
    assert status["transport"] == "delta"
    wait_until(lambda: pilot.syncz()[0]["types"]["VHDS"].get("ackedVersion") == pilot.syncz()[0]["types"]["VHDS"]["sentVersion"], 10, "VHDS ACKed")
    before = pilot.syncz()[0]["types"]
    assert before["VHDS"]["resourceCount"] == len(HOSTS)
    reloads_before = sum(v for k, v in proxy.stats("vhds").items() if k.endswith("config_reload"))
    cds_before = proxy.stats("cluster_manager.cds.update_success")["cluster_manager.cds.update_success"]

    # One VirtualService changes: one VirtualHost travels, nothing else.
    write_mesh(config_dir, port, blue, green, {"app.example.com": "blue", "news.example.com": "blue", "shop.example.com": "green"})
    wait_until(lambda: backend_of(port, "shop.example.com") == "green", 15, "traffic for shop to follow the change to green")
    assert backend_of(port, "app.example.com") == "blue" and backend_of(port, "news.example.com") == "blue"
    time.sleep(0.5)
    after = pilot.syncz()[0]["types"]
    assert after["VHDS"]["resourceCount"] == 1, after["VHDS"]
    assert int(after["VHDS"]["sentNonce"]) == int(before["VHDS"]["sentNonce"]) + 1, (before["VHDS"], after["VHDS"])
    assert after["VHDS"]["ackedVersion"] == after["VHDS"]["sentVersion"]
    for other in ("CDS", "EDS", "LDS", "RDS"):
        assert after[other]["sentNonce"] == before[other]["sentNonce"], f"{other} was pushed for a VirtualService change"
    reloads_after = sum(v for k, v in proxy.stats("vhds").items() if k.endswith("config_reload"))
    assert reloads_after == reloads_before + 1, (reloads_before, reloads_after)
    assert proxy.stats("cluster_manager.cds.update_success")["cluster_manager.cds.update_success"] == cds_before
    rejected = {k: v for k, v in proxy.stats("update_rejected").items() if v}
    assert not rejected, rejected

    # A VirtualService removed: its virtual host is removed from Envoy (removed_resources by name).
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway(port),
        static_service("blue.example.com", 80, [("127.0.0.1", blue.port, {})], name="blue"),
        static_service("green.example.com", 80, [("127.0.0.1", green.port, {})], name="green"),
        vs_for("app.example.com", "blue.example.com"),
        vs_for("shop.example.com", "green.example.com"),
    ]))

    def news_gone():
        names = [host["name"] for host in proxy.route_config(f"http.{port}")["route_config"].get("virtual_hosts", [])]
        return f"http.{port}/news.example.com:{port}" not in names and len(names) == 2
    wait_until(news_gone, 15, "Envoy to drop the removed virtual host")
    wait_until(lambda: backend_of(port, "news.example.com") is None, 5, "no route for the removed host")
    assert backend_of(port, "shop.example.com") == "green" and backend_of(port, "app.example.com") == "blue"


def test_a_delta_envoy_that_turns_vhds_off_gets_whole_route_configurations(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port = free_port()
    write_mesh(config_dir, port, blue, green, {host: "blue" for host in HOSTS})
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot, delta=True, metadata={"SWIFTPILOT_VHDS": "false"})
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_until(lambda: backend_of(port, "shop.example.com") == "blue", 10, "traffic to blue")
    route = proxy.route_config(f"http.{port}")["route_config"]
    assert "vhds" not in route
    assert sorted(host["name"] for host in route["virtual_hosts"]) == [f"{host}:{port}" for host in HOSTS]
    assert "VHDS" not in pilot.syncz()[0]["types"]
    write_mesh(config_dir, port, blue, green, {"app.example.com": "blue", "news.example.com": "blue", "shop.example.com": "green"})
    wait_until(lambda: backend_of(port, "shop.example.com") == "green", 15, "traffic to follow the change")


def test_a_route_configuration_added_later_gets_its_virtual_hosts_over_the_running_vhds_subscription(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port, second = free_port(), free_port()
    write_mesh(config_dir, port, blue, green, {host: "blue" for host in HOSTS})
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot, delta=True)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_until(lambda: backend_of(port, "app.example.com") == "blue", 10, "traffic to blue over VHDS")

    # A second Gateway port: a new listener and route configuration, whose virtual hosts reach Envoy
    # although its VHDS (wildcard) subscription is already running.
    mesh = (config_dir / "mesh.yaml").read_text()
    (config_dir / "mesh.yaml").write_text("---\n".join([
        mesh,
        gateway(second, name="gw2"),
        vs_for("other.example.com", "green.example.com").replace("gateways: [gw]", "gateways: [gw2]"),
    ]))
    proxy.wait_listener(f"0.0.0.0_{second}", timeout=15)
    wait_until(lambda: backend_of(second, "other.example.com") == "green", 10, "traffic on the new port over VHDS")
    names = [host["name"] for host in proxy.route_config(f"http.{second}")["route_config"]["virtual_hosts"]]
    assert names == [f"http.{second}/other.example.com:{second}"]
    assert backend_of(port, "app.example.com") == "blue"
    rejected = {k: v for k, v in proxy.stats("update_rejected").items() if v}
    assert not rejected, rejected
