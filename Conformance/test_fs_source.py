"""`--config-source fs://DIR`: a watched YAML directory. Bad documents are rejected one by one (listed in
/debug/mcpz with file, document/line and field) while the rest of the file applies; real Envoy proves it."""
import json
import re

from harness import free_port, wait_until
from test_mcp_sources import virtual_service_yaml, wait_backend
from yaml_snippets import gateway, static_service

NS = "istio-system"


def misspelled_vs(name: str, host: str) -> str:
    # `gatways` instead of `gateways`
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {NS}
spec:
  hosts: [{host}]
  gatways: [gw]
  http:
  - route: [{{destination: {{host: one.example.com, port: {{number: 80}}}}}}]
"""


def weighted_vs(name: str, host: str, weight: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {NS}
spec:
  hosts: [{host}]
  gateways: [gw]
  http:
  - route:
    - destination: {{host: one.example.com, port: {{number: 80}}}}
      weight: {weight}
"""


def mcpz(pilot) -> dict:
    return json.loads(pilot.admin("/debug/mcpz")[1])


def snapshot_names(pilot, kind: str) -> set[str]:
    collections = json.loads(pilot.admin("/debug/snapshotz")[1])["collections"]
    return set(collections.get(kind, {}).get("resources", []))


def document_start_lines(text: str) -> list[int]:
    """1-based line of the first line of each `---`-separated document."""
    starts, line = [1], 0
    for line, content in enumerate(text.splitlines(), 1):
        if content.strip() == "---":
            starts.append(line + 1)
    return starts


def test_bad_documents_are_rejected_alone_and_files_are_followed(config_dir, backends, swiftpilot, envoy):
    one, two = backends("one"), backends("two")
    port = free_port()
    documents = [
        gateway(port),
        static_service("one.example.com", 80, [("127.0.0.1", one.port, {})], name="one"),
        virtual_service_yaml("web", "web.example.com", "one.example.com"),
        misspelled_vs("typo", "typo.example.com"),            # document 4: unknown field
        weighted_vs("negative", "neg.example.com", -1),       # document 5: semantically invalid
    ]
    mesh = config_dir / "mesh.yaml"
    mesh.write_text("---\n".join(documents))
    starts = document_start_lines(mesh.read_text())
    other = config_dir / "other.yaml"
    other.write_text("---\n".join([static_service("two.example.com", 80, [("127.0.0.1", two.port, {})], name="two"),
                                   virtual_service_yaml("other", "other.example.com", "two.example.com")]))
    source = f"fs://{config_dir}"
    pilot = swiftpilot("--config-source", source, "--debounce-ms", "20")
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")

    # The good documents of the same file apply; the bad ones do not.
    wait_backend(port, "web.example.com", "one")
    wait_backend(port, "other.example.com", "two")
    wait_backend(port, "typo.example.com", 404)
    wait_backend(port, "neg.example.com", 404)
    assert snapshot_names(pilot, "VirtualService") == {f"{NS}/web", f"{NS}/other"}

    rejected = [r for r in mcpz(pilot)["rejected"] if r["source"] == source]
    by_resource = {r.get("resource"): r for r in rejected}
    assert set(by_resource) == {f"VirtualService {NS}/typo", f"VirtualService {NS}/negative"}, rejected
    typo, negative = by_resource[f"VirtualService {NS}/typo"], by_resource[f"VirtualService {NS}/negative"]
    for entry, document in ((typo, 4), (negative, 5)):
        assert str(mesh) in entry["error"], entry
        assert re.search(rf"document {document}\b", entry["error"]), entry
        assert re.search(rf"line {starts[document - 1]}\b", entry["error"]), (entry, starts)
    assert "gatways" in typo["error"], typo
    assert typo["field"].startswith("spec") and typo["field"].endswith("gatways"), typo
    assert negative["field"] == "spec.http[0].route[0].weight", negative
    # Rejections are counted in the metrics too.
    metrics = pilot.admin("/metrics")[1].decode()
    counted = [line for line in metrics.splitlines()
               if line.startswith("swiftpilot_config_rejections_total") and 'kind="VirtualService"' in line]
    assert counted and sum(float(line.split()[-1]) for line in counted) >= 2, metrics
    assert "other.yaml" not in json.dumps(rejected)

    # Fixing the file clears the rejections and the fixed resources apply.
    documents[3] = virtual_service_yaml("typo", "typo.example.com", "one.example.com")
    documents[4] = weighted_vs("negative", "neg.example.com", 100)
    mesh.write_text("---\n".join(documents))
    wait_backend(port, "typo.example.com", "one")
    wait_backend(port, "neg.example.com", "one")
    wait_until(lambda: not [r for r in mcpz(pilot)["rejected"] if r["source"] == source], 10, "the rejections cleared")

    # Deleting a file removes its resources.
    other.unlink()
    wait_backend(port, "other.example.com", 404)
    wait_until(lambda: f"{NS}/two" not in snapshot_names(pilot, "ServiceEntry"), 10, "two gone from the snapshot")
    assert snapshot_names(pilot, "VirtualService") == {f"{NS}/web", f"{NS}/typo", f"{NS}/negative"}
    wait_backend(port, "web.example.com", "one")


def test_misspelled_field_is_reported_by_its_path(config_dir, swiftpilot):
    """The `field` of a rejection is a path into the resource (as for semantic errors:
    `spec.http[0].route[0].weight`), also for an unknown (misspelled) field, top-level or nested."""
    nested = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: nested
  namespace: istio-system
spec:
  hosts: [nested.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: one.example.com, port: {number: 80}}}]
    timout: 5s
"""
    (config_dir / "bad.yaml").write_text("---\n".join([misspelled_vs("typo", "typo.example.com"), nested]))
    source = f"fs://{config_dir}"
    pilot = swiftpilot("--config-source", source)
    wait_until(lambda: len([r for r in mcpz(pilot)["rejected"] if r["source"] == source]) == 2, 10, "two rejections")
    fields = {r["resource"]: r["field"] for r in mcpz(pilot)["rejected"] if r["source"] == source}
    assert fields == {f"VirtualService {NS}/typo": "spec.gatways",
                      f"VirtualService {NS}/nested": "spec.http[0].timout"}, fields
