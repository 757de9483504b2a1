"""A real Envoy on incremental (delta) ADS: it syncs, follows changes, and deletions reach it."""
import time

from harness import free_port, request, wait_until
from test_envoy_updates import backend_of, route_to, write
from yaml_snippets import gateway, static_service


def test_envoy_on_delta_ads_follows_changes_and_deletions(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port = free_port()
    write(config_dir, port, blue, green, route_to("app.example.com", "blue.example.com"))
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot, delta=True)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_until(lambda: backend_of(port) == "blue", 10, "traffic to blue over delta ADS")
    assert pilot.syncz()[0]["transport"] == "delta"

    # A route change: only RDS moves.
    cds_before = proxy.stats("cluster_manager.cds.update_success")["cluster_manager.cds.update_success"]
    write(config_dir, port, blue, green, route_to("app.example.com", "green.example.com"))
    wait_until(lambda: backend_of(port) == "green", 15, "traffic to follow the change to green")
    time.sleep(0.5)
    assert proxy.stats("cluster_manager.cds.update_success")["cluster_manager.cds.update_success"] == cds_before

    # Removing the blue service removes its cluster from Envoy (delta removed_resources).
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway(port),
        static_service("green.example.com", 80, [("127.0.0.1", green.port, {})], name="green"),
        route_to("app.example.com", "green.example.com"),
    ]))

    def blue_cluster_gone():
        clusters = proxy.admin("/clusters")[1].decode()
        return "outbound|80||blue.example.com" not in clusters and "outbound|80||green.example.com" in clusters
    wait_until(blue_cluster_gone, 15, "Envoy to drop the removed cluster")
    assert backend_of(port) == "green"
    rejected = {k: v for k, v in proxy.stats("update_rejected").items() if v}
    assert not rejected, rejected
    wait_until(lambda: all(t["ackedVersion"] == t["sentVersion"] for t in pilot.syncz()[0]["types"].values()), 10, "every type ACKed")
