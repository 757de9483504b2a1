"""Last-known-good snapshots: a restart with every source down still serves config."""
import json

from harness import free_port, wait_until
from test_mcp_sources import backend_of, gateway, service_entry, virtual_service, wait_backend


def test_restart_with_every_source_down_serves_the_last_known_good_snapshot(mcp_servers, backends, swiftpilot, envoy, workdir, processes):
    one = backends("one")
    port = free_port()
    server = mcp_servers("istiod")
    server.set("Gateway", [gateway(port)])
    server.set("ServiceEntry", [service_entry("one", "one.example.com", one.port)])
    server.set("VirtualService", [virtual_service("web", "web.example.com", "one.example.com")])
    snapshots = workdir / "snapshots"
    first = swiftpilot("--config-source", server.address, "--snapshot-dir", str(snapshots))
    wait_until(lambda: (snapshots / "last-known-good.json").exists(), 10, "the snapshot file")
    version = json.loads(first.admin("/debug/snapshotz")[1])["version"]
    first.stop()
    server.stop()

    second = swiftpilot("--config-source", server.address, "--snapshot-dir", str(snapshots))  # waits for /healthz/ready
    status, body = second.admin("/healthz/ready")
    assert status == 200 and b"last-known-good" in body, body
    assert json.loads(second.admin("/debug/snapshotz")[1])["version"] == version
    proxy = envoy(second)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "web.example.com", "one")

    # The source comes back with a change: it replaces the last-known-good content.
    server.set("VirtualService", [virtual_service("web", "www.example.com", "one.example.com")])
    server.start()
    wait_backend(port, "www.example.com", "one", timeout=15)
    wait_until(lambda: backend_of(port, "web.example.com")[0] == 404, 10, "the old host to go")


def test_corrupt_snapshot_file_is_a_clear_error_and_an_empty_start(mcp_servers, swiftpilot, workdir):
    server = mcp_servers("istiod")
    server.stop()
    snapshots = workdir / "snapshots"
    snapshots.mkdir()
    (snapshots / "last-known-good.json").write_text('{"format": "swiftpilot-snapshot", "formatVersion": 1, "checksum": "0", "payload": "e30="}')
    pilot = swiftpilot("--config-source", server.address, "--snapshot-dir", str(snapshots), ready=False)
    wait_until(lambda: "fails its checksum" in pilot.output(), 10, "the checksum error in the log")
    pilot.check_alive()
    # Not ready: no snapshot was loaded and the source is down.
    status, body = wait_until(lambda: pilot.admin("/healthz/ready"), 10, "the admin server")
    assert status == 503, body
    assert json.loads(pilot.admin("/debug/snapshotz")[1])["version"] == 0
