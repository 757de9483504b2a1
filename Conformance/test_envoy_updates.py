"""Config changes reach a real Envoy and traffic follows; a rejected update is visible and not resent."""
import json
import subprocess
import time

from harness import free_port, request, swiftpilot_binary, wait_until
from yaml_snippets import gateway, static_service


def route_to(host: str, destination: str, regex: str | None = None) -> str:
    match = f"regex: '{regex}'" if regex else "prefix: /"
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: front
  namespace: istio-system
spec:
  hosts: ["{host}"]
  gateways: [gw]
  http:
  - match: [{{uri: {{{match}}}}}]
    route: [{{destination: {{host: {destination}, port: {{number: 80}}}}}}]
"""


def write(config_dir, port, blue, green, vs):
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway(port),
        static_service("blue.example.com", 80, [("127.0.0.1", blue.port, {})], name="blue"),
        static_service("green.example.com", 80, [("127.0.0.1", green.port, {})], name="green"),
        vs,
    ]))


def backend_of(port: int) -> str | None:
    status, headers, _ = request(port, "/", host="app.example.com")
    return headers.get("x-backend") if status == 200 else None


def test_config_change_reaches_envoy_and_traffic_follows(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port = free_port()
    write(config_dir, port, blue, green, route_to("app.example.com", "blue.example.com"))
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_until(lambda: backend_of(port) == "blue", 10, "traffic to blue")

    write(config_dir, port, blue, green, route_to("app.example.com", "green.example.com"))
    started = time.monotonic()
    wait_until(lambda: backend_of(port) == "green", 15, "traffic to follow the change to green")
    print(f"file change → Envoy routes to green: {time.monotonic() - started:.2f}s (includes the 1 s directory poll)")
    assert all(backend_of(port) == "green" for _ in range(5))
    assert all(v == 0 for k, v in proxy.stats("update_rejected").items()), proxy.stats("update_rejected")


def test_rejected_update_shows_as_nacked_with_its_istio_object_and_is_not_resent(config_dir, backends, swiftpilot, envoy):
    blue, green = backends("blue"), backends("green")
    port = free_port()
    write(config_dir, port, blue, green, route_to("app.example.com", "blue.example.com"))
    pilot = swiftpilot("--examples-dir", str(config_dir), "--debounce-ms", "20")
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_until(lambda: backend_of(port) == "blue", 10, "traffic to blue")

    # RE2 compiles this, but its program is far above Envoy's default size limit: Envoy rejects the route.
    write(config_dir, port, blue, green, route_to("app.example.com", "green.example.com", regex="/(a|b|c){300}"))
    def route_rejections() -> int:
        return sum(v for k, v in proxy.stats("update_rejected").items() if k.endswith(f"rds.http.{port}.update_rejected"))
    wait_until(lambda: route_rejections() >= 1, 15, "Envoy to reject the route update")

    def nacked_status():
        out = subprocess.run([swiftpilot_binary(), "proxy-status", "--admin", f"127.0.0.1:{pilot.admin_port}"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return out.stdout if "NACKED" in out.stdout else None
    table = wait_until(nacked_status, 10, "proxy-status to show NACKED")
    print(table)
    header, row = table.splitlines()[0:2]
    assert row.split()[header.split().index("RDS")] == "NACKED"
    assert "VirtualService istio-system/front" in table

    # No resend loop: the rejected version is not pushed again, and the last good config keeps serving.
    time.sleep(2)
    assert route_rejections() == 1
    assert backend_of(port) == "blue"

    # A fixed config is accepted and the status clears.
    write(config_dir, port, blue, green, route_to("app.example.com", "green.example.com"))
    wait_until(lambda: backend_of(port) == "green", 15, "traffic to follow the fixed config")
    wait_until(lambda: all(t.get("nack") is None for t in pilot.syncz()[0]["types"].values()), 10, "the NACK to clear")
