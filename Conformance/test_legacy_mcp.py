"""Legacy MCP (istio.mcp.v1alpha1 ResourceSource / ResourceSink, specs/mcp-protocol.md §2.1, §2.2, §3.1):
SwiftPilot as the sink of a Galley-like Python source (`legacy_mcp.LegacySource`), proven with real Envoy.
"""
import json

import pytest

from harness import free_port, wait_until
from legacy_mcp import ALL_COLLECTIONS, COLLECTIONS, TRIGGER_COLLECTION, LegacySource
from mcp_server import KINDS
from test_mcp_sources import gateway, service_entry, virtual_service, wait_backend
from yaml_snippets import gateway as gateway_yaml

NS = "istio-system"
UNIMPLEMENTED = 12


@pytest.fixture
def legacy_sources(request):
    started: list[LegacySource] = []

    def make(**options) -> LegacySource:
        source = LegacySource(**options)
        started.append(source)
        return source

    yield make
    report = getattr(request.node, "rep_call", None)
    for source in started:
        source.stop()
        if report is None or report.failed:
            print("\n" + source.dump()[-12000:])


def snapshot(pilot) -> dict:
    status, body = pilot.admin("/debug/snapshotz")
    assert status == 200, body
    return json.loads(body)


def snapshot_names(pilot, kind: str) -> set[str]:
    return set(snapshot(pilot)["collections"].get(kind, {}).get("resources", []))


def mcpz(pilot) -> dict:
    return json.loads(pilot.admin("/debug/mcpz")[1])


def wait_all_answered(source: LegacySource, timeout: float = 10):
    try:
        wait_until(lambda: not source.unanswered(), timeout, "every Resources ACKed/NACKed")
    except TimeoutError as error:
        raise AssertionError(f"{error}; never answered: {source.unanswered()}") from None


def assert_stream_start(source: LegacySource, stream: int, collections: set[str]):
    """Exactly one RequestResources per collection with an empty nonce, each with a sink_node, all sent first."""
    requests = source.requests_on(stream)
    initial = [r for r in requests if not r.nonce and r.collection != TRIGGER_COLLECTION]
    assert sorted(r.collection for r in initial) == sorted(collections), \
        f"initial requests {sorted(r.collection for r in initial)} != {sorted(collections)}"
    assert all(r.has_sink_node for r in initial), initial
    assert all(not r.is_nack for r in initial), initial
    # §2.1 step 2: all of them before the first ACK/NACK.
    first_reply = next((i for i, r in enumerate(requests) if r.nonce), len(requests))
    late = [r.collection for r in requests[first_reply:] if not r.nonce and r.collection != TRIGGER_COLLECTION]
    assert not late, f"initial requests sent after the first ACK: {late}"


def assert_acks(source: LegacySource):
    """Every Resources answered by exactly one ACK naming its collection and nonce, asking incremental."""
    problems = []
    for response in source.responses:
        replies = source.replies_to(response)
        if len(replies) != 1:
            problems.append(f"{response.collection} nonce {response.nonce}: {len(replies)} replies")
        for reply in replies:
            if reply.is_nack:
                problems.append(f"{response.collection} nonce {response.nonce} NACKed: {reply.error_message}")
            if not reply.incremental:
                problems.append(f"ACK of {response.collection} {response.nonce} without incremental=true")
            if not reply.has_sink_node:
                problems.append(f"ACK of {response.collection} {response.nonce} without sink_node")
    assert not problems, problems


def mesh_objects(port: int, one, two):
    return {"Gateway": [gateway(port)],
            "ServiceEntry": [service_entry("one", "one.example.com", one.port),
                             service_entry("two", "two.example.com", two.port)],
            "VirtualService": [virtual_service("web", "web.example.com", "one.example.com")]}


# MARK: a. a Galley-like ResourceSource


def test_galley_like_source_drives_envoy(legacy_sources, backends, swiftpilot, envoy):
    """Default subscription (Pilot 1.8's eight networking collections, §3.1) against a source serving all of them."""
    one, two = backends("one"), backends("two")
    port = free_port()
    source = legacy_sources().start()
    for kind, objects in mesh_objects(port, one, two).items():
        source.set(kind, objects)

    pilot = swiftpilot("--config-source", source.address, ready=False)
    wait_until(lambda: len({r.collection for r in source.requests_on(1)}) >= len(KINDS) or len(source.streams_seen()) > 1,
               15, "SwiftPilot's initial requests")
    # Exactly the legacy collection names of §3.1: istio/networking/v1alpha3/<plural>.
    assert_stream_start(source, 1, set(ALL_COLLECTIONS))
    pilot.wait_ready(15)
    assert source.streams_seen() == [1], f"the stream was restarted: {source.stream_errors or source.log[-5:]}"
    _follow_updates_and_deletes(source, pilot, envoy, port, "web.example.com", via_source=True)


def test_galley_like_source_updates_and_incremental_deletes(legacy_sources, backends, swiftpilot, envoy, config_dir):
    """The same mechanics restricted to ServiceEntry/VirtualService (the Gateway from a directory), so the
    incremental update/delete path is exercised independently of the Gateway collection's name."""
    one, two = backends("one"), backends("two")
    port = free_port()
    (config_dir / "gw.yaml").write_text(gateway_yaml(port))
    source = legacy_sources(served={COLLECTIONS["ServiceEntry"], COLLECTIONS["VirtualService"]}).start()
    objects = mesh_objects(port, one, two)
    source.set("ServiceEntry", objects["ServiceEntry"])
    source.set("VirtualService", objects["VirtualService"])

    pilot = swiftpilot("--config-source", f"{source.address}?kinds=ServiceEntry,VirtualService",
                       "--config-source", f"fs://{config_dir}")
    assert_stream_start(source, 1, {COLLECTIONS["ServiceEntry"], COLLECTIONS["VirtualService"]})
    assert source.streams_seen() == [1], source.log[-5:]
    _follow_updates_and_deletes(source, pilot, envoy, port, "web.example.com", via_source=False)


def _follow_updates_and_deletes(source, pilot, envoy, port, host, via_source):
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, host, "one")
    wait_all_answered(source)
    first = source.responses_on(1)
    assert first and not first[0].incremental, "the first response on a stream is full state"

    # Update: the VirtualService now routes to two (an incremental response: SwiftPilot asked for it).
    source.upsert("VirtualService", virtual_service("web", host, "two.example.com"))
    wait_backend(port, host, "two")
    update = [r for r in source.responses_on(1) if r.collection == COLLECTIONS["VirtualService"]][-1]
    assert update.incremental and update.names == [f"{NS}/web"], update

    # Delete: an incremental response with removed_resources only.
    source.delete("ServiceEntry", f"{NS}/two")
    wait_backend(port, host, 503)
    delete = [r for r in source.responses_on(1) if r.collection == COLLECTIONS["ServiceEntry"]][-1]
    assert delete.incremental and delete.names == [] and delete.removed == [f"{NS}/two"], delete
    wait_until(lambda: f"{NS}/two" not in snapshot_names(pilot, "ServiceEntry"), 5, "two gone from the snapshot")
    assert f"{NS}/one" in snapshot_names(pilot, "ServiceEntry")

    wait_all_answered(source)
    assert_acks(source)


# MARK: b. reconnect with initial_resource_versions


def test_reconnect_starts_with_full_state_and_drops_deleted(legacy_sources, backends, swiftpilot, envoy,
                                                                       config_dir):
    one, two = backends("one"), backends("two")
    port = free_port()
    (config_dir / "gw.yaml").write_text(gateway_yaml(port))
    served = {COLLECTIONS["ServiceEntry"], COLLECTIONS["VirtualService"]}
    source = legacy_sources(served=served).start()
    objects = mesh_objects(port, one, two)
    source.set("ServiceEntry", objects["ServiceEntry"])
    source.set("VirtualService", objects["VirtualService"])
    pilot = swiftpilot("--config-source", f"{source.address}?kinds=ServiceEntry,VirtualService",
                       "--config-source", f"fs://{config_dir}")
    proxy = envoy(pilot)
    wait_backend(port, "web.example.com", "one")
    wait_all_answered(source)
    held = {}
    for response in source.responses_on(1):
        held[response.collection] = {n: source._store[response.collection][n].metadata.version for n in response.names}

    # The source goes away; meanwhile ServiceEntry two is deleted (the route to one is untouched).
    source.stop()
    source.delete("ServiceEntry", f"{NS}/two")
    source.start()
    wait_until(lambda: 2 in source.streams_seen(), 20, "SwiftPilot reconnecting")
    wait_until(lambda: {r.collection for r in source.requests_on(2)} >= served, 5, "initial requests on stream 2")
    assert_stream_start(source, 2, served)
    # Each collection reopens asking for full state (no resumption: a source that ignores
    # initial_resource_versions would answer incrementally without removals, §2.1/§2.5).
    for request in source.requests_on(2):
        if not request.nonce:
            assert not request.incremental and not request.initial_resource_versions, request
    assert held, "the first stream delivered nothing"
    wait_until(lambda: source.responses_on(2), 5, "a response on stream 2")
    first = source.responses_on(2)[0]
    assert not first.incremental, first
    # ServiceEntry two was deleted while disconnected: it must disappear.
    wait_until(lambda: f"{NS}/two" not in snapshot_names(pilot, "ServiceEntry"), 10, "two gone after the reconnect")
    assert snapshot_names(pilot, "ServiceEntry") == {f"{NS}/one"}
    wait_backend(port, "web.example.com", "one")
    proxy.check_alive()


# MARK: c. undecodable body -> NACK, previous config keeps serving


def test_undecodable_body_is_nacked_and_previous_config_serves(legacy_sources, backends, swiftpilot, envoy, config_dir):
    one, two = backends("one"), backends("two")
    port = free_port()
    (config_dir / "gw.yaml").write_text(gateway_yaml(port))
    source = legacy_sources(served={COLLECTIONS["ServiceEntry"], COLLECTIONS["VirtualService"]}).start()
    objects = mesh_objects(port, one, two)
    source.set("ServiceEntry", objects["ServiceEntry"])
    source.set("VirtualService", objects["VirtualService"])
    pilot = swiftpilot("--config-source", f"{source.address}?kinds=ServiceEntry,VirtualService",
                       "--config-source", f"fs://{config_dir}")
    envoy(pilot)
    wait_backend(port, "web.example.com", "one")
    wait_all_answered(source)

    source.put_undecodable("VirtualService", f"{NS}/broken")
    bad = [r for r in source.responses_on(1) if r.collection == COLLECTIONS["VirtualService"]][-1]
    wait_until(lambda: source.replies_to(bad), 10, "a reply to the undecodable response")
    reply = source.replies_to(bad)[0]
    assert reply.is_nack and reply.error_code != 0 and reply.error_message, reply
    assert f"{NS}/broken" not in snapshot_names(pilot, "VirtualService")
    wait_backend(port, "web.example.com", "one")
    status, _ = pilot.admin("/healthz/ready")
    assert status == 200
    # The source does not resend a NACKed version; its next change (the broken resource replaced by a good
    # VirtualService) is applied and ACKed.
    source.delete("VirtualService", f"{NS}/broken")
    source.upsert("VirtualService", virtual_service("web", "web.example.com", "two.example.com"))
    wait_backend(port, "web.example.com", "two")
    wait_all_answered(source)
    last = [r for r in source.responses_on(1) if r.collection == COLLECTIONS["VirtualService"]][-1]
    assert not source.replies_to(last)[0].is_nack, source.replies_to(last)


# MARK: d. ?kinds= restricts the subscription


def test_kinds_restricts_the_subscription(legacy_sources, backends, swiftpilot, envoy):
    one, two = backends("one"), backends("two")
    port = free_port()
    served = {COLLECTIONS[k] for k in ("ServiceEntry", "Gateway", "VirtualService")}
    # A source that serves only some kinds (e.g. a Galley older than 1.8, without workloadgroups) kills
    # any stream asking for another. The default subscription asks for every kind: the stream dies at
    # the first request the source does not serve (which one arrives first depends on timing).
    default_source = legacy_sources(served=served).start()
    default_pilot = swiftpilot("--config-source", default_source.address, ready=False)
    wait_until(lambda: len(default_source.streams_seen()) >= 2, 15, "the default subscription's stream dying and retried")
    asked = {r.collection for r in default_source.requests_on(1)}
    assert asked - served, f"the default subscription asked only for served kinds: {sorted(asked)}"
    assert default_pilot.admin("/healthz/ready")[0] != 200
    assert "unsupported collection" in default_pilot.output(), "SwiftPilot's log does not say why the stream died"
    default_pilot.stop()

    source = legacy_sources(served=served).start()
    for kind, objects in mesh_objects(port, one, two).items():
        source.set(kind, objects)
    pilot = swiftpilot("--config-source", f"{source.address}?kinds=ServiceEntry,Gateway,VirtualService", ready=False)
    wait_until(lambda: len({r.collection for r in source.requests_on(1)}) >= 3 or len(source.streams_seen()) > 1, 15,
               "initial requests")
    assert_stream_start(source, 1, served)
    pilot.wait_ready(15)
    envoy(pilot)
    wait_backend(port, "web.example.com", "one")
    assert source.streams_seen() == [1]
    wait_all_answered(source)
    assert_acks(source)


# MARK: e. --mcp-sink-listen: the source dials SwiftPilot


def test_source_dials_the_sink_endpoint(legacy_sources, backends, swiftpilot, envoy, config_dir):
    one, two = backends("one"), backends("two")
    port = free_port()
    sink_port = free_port()
    # An empty directory as the only configured source (not the embedded examples).
    pilot = swiftpilot("--config-source", f"fs://{config_dir}", "--mcp-sink-listen", f"127.0.0.1:{sink_port}",
                       ready=False)
    source = legacy_sources()
    for kind, objects in mesh_objects(port, one, two).items():
        source.set(kind, objects)
    wait_until(lambda: _connectable(sink_port), 15, "the ResourceSink endpoint listening")
    source.dial(f"127.0.0.1:{sink_port}")

    wait_until(lambda: len({r.collection for r in source.requests_on(1)} - {TRIGGER_COLLECTION}) >= len(KINDS)
               or source.stream_errors, 10, "SwiftPilot's RequestResources")
    assert_stream_start(source, 1, set(ALL_COLLECTIONS))
    wait_until(lambda: [r for r in source.requests_on(1) if r.collection == TRIGGER_COLLECTION], 10, "the trigger NACK")
    trigger = [r for r in source.requests_on(1) if r.collection == TRIGGER_COLLECTION]
    assert len(trigger) == 1 and trigger[0].error_code == UNIMPLEMENTED, trigger

    wait_until(lambda: snapshot_names(pilot, "VirtualService") == {f"{NS}/web"}, 10, "the pushed VirtualService")
    assert snapshot_names(pilot, "ServiceEntry") == {f"{NS}/one", f"{NS}/two"}
    assert snapshot_names(pilot, "Gateway") == {f"{NS}/gw"}
    proxy = envoy(pilot)
    proxy.wait_listener(f"0.0.0.0_{port}")
    wait_backend(port, "web.example.com", "one")
    source.upsert("VirtualService", virtual_service("web", "web.example.com", "two.example.com"))
    wait_backend(port, "web.example.com", "two")
    wait_all_answered(source)
    assert_acks(source)
    assert not source.stream_errors, source.stream_errors


def _connectable(port: int) -> bool:
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# MARK: f. swiftpilot mcp-serve to an mcp:// and an xds:// sink


def test_mcp_serve_feeds_legacy_and_xds_sinks(workdir, config_dir, processes, backends, swiftpilot):
    from harness import Process, swiftpilot_binary
    one, two = backends("one"), backends("two")
    port = free_port()
    from yaml_snippets import static_service
    from test_mcp_sources import virtual_service_yaml
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway_yaml(port),
        static_service("one.example.com", 80, [("127.0.0.1", one.port, {})], name="one"),
        static_service("two.example.com", 80, [("127.0.0.1", two.port, {})], name="two"),
    ]))
    (config_dir / "vs.yaml").write_text(virtual_service_yaml("web", "web.example.com", "one.example.com"))
    serve_port = free_port()
    server = Process("mcp-serve", [swiftpilot_binary(), "mcp-serve", "--dir", str(config_dir),
                                   "--listen", f"127.0.0.1:{serve_port}", "--log-level", "debug"], workdir)
    processes.append(server)
    wait_until(lambda: (server.check_alive(), _connectable(serve_port))[1], 15, "mcp-serve listening")

    legacy = swiftpilot("--config-source", f"mcp://127.0.0.1:{serve_port}")
    xds = swiftpilot("--config-source", f"xds://127.0.0.1:{serve_port}")

    def collections(pilot):
        return {kind: set(c["resources"]) for kind, c in snapshot(pilot)["collections"].items() if c["resources"]}

    wait_until(lambda: collections(legacy) == collections(xds) and collections(xds).get("VirtualService"), 15,
               "the same snapshot on both sinks")
    assert collections(xds)["ServiceEntry"] == {f"{NS}/one", f"{NS}/two"}
    assert collections(xds)["Gateway"] == {f"{NS}/gw"}

    (config_dir / "vs.yaml").write_text(virtual_service_yaml("web2", "web.example.com", "two.example.com"))
    for pilot in (legacy, xds):
        wait_until(lambda: snapshot_names(pilot, "VirtualService") == {f"{NS}/web2"}, 15, "the edit reaching the sink")
    assert collections(legacy) == collections(xds)


def test_reconnect_to_a_source_ignoring_initial_versions_drops_deleted(legacy_sources, backends, swiftpilot, envoy,
                                                                       config_dir):
    """Istio's source ignores initial_resource_versions: after a reconnect, a collection's first response may be
    incremental (the stream's nonce counter is no longer 0) yet carry every current resource and no removals.
    Resources deleted while disconnected must still disappear from SwiftPilot (§2.1, §2.5)."""
    one, two = backends("one"), backends("two")
    port = free_port()
    (config_dir / "gw.yaml").write_text(gateway_yaml(port))
    served = {COLLECTIONS["ServiceEntry"], COLLECTIONS["VirtualService"]}
    source = legacy_sources(served=served).start()
    objects = mesh_objects(port, one, two)
    source.set("ServiceEntry", objects["ServiceEntry"])
    source.set("VirtualService", objects["VirtualService"] + [virtual_service("gone", "gone.example.com", "two.example.com")])
    pilot = swiftpilot("--config-source", f"{source.address}?kinds=ServiceEntry,VirtualService",
                       "--config-source", f"fs://{config_dir}")
    envoy(pilot)
    wait_backend(port, "gone.example.com", "two")
    wait_all_answered(source)

    source.stop()
    source.delete("VirtualService", f"{NS}/gone")
    source.delete("ServiceEntry", f"{NS}/two")
    source.start()
    wait_until(lambda: {r.collection for r in source.responses_on(2)} == served, 20, "both collections answered on stream 2")
    wait_all_answered(source)
    second = source.responses_on(2)
    # SwiftPilot reopens every collection asking for full state, so even this source answers in full.
    assert [r.incremental for r in second] == [False, False], second
    expected = {"ServiceEntry": {f"{NS}/one"}, "VirtualService": {f"{NS}/web"}}
    try:
        wait_until(lambda: all(snapshot_names(pilot, k) == v for k, v in expected.items()), 5,
                   "resources deleted while disconnected removed")
    except TimeoutError:
        served_now = {k: snapshot_names(pilot, k) for k in expected}
        raise AssertionError(f"deleted while disconnected, still served: {served_now}; stream 2: {second}") from None
    wait_backend(port, "gone.example.com", 404)


def test_mcp_serve_legacy_source_speaks_pilot_collection_names(workdir, config_dir, processes):
    """`swiftpilot mcp-serve` as a ResourceSource for a Pilot-1.8-like sink (a Python client here): each of the
    eight §3.1 collection names is answered with its full state; the Gateway is under .../gateways."""
    import queue as queue_module

    import grpc
    from harness import Process, swiftpilot_binary
    from legacy_mcp import mcp_modules
    from yaml_snippets import static_service
    mcp_pb2, mcp_grpc = mcp_modules()
    port = free_port()
    (config_dir / "mesh.yaml").write_text("---\n".join([
        gateway_yaml(port), static_service("one.example.com", 80, [("127.0.0.1", 9, {})], name="one")]))
    serve_port = free_port()
    server = Process("mcp-serve", [swiftpilot_binary(), "mcp-serve", "--dir", str(config_dir),
                                   "--listen", f"127.0.0.1:{serve_port}", "--log-level", "debug"], workdir)
    processes.append(server)
    wait_until(lambda: (server.check_alive(), _connectable(serve_port))[1], 15, "mcp-serve listening")

    outgoing: queue_module.Queue = queue_module.Queue()
    for collection in sorted(ALL_COLLECTIONS):
        outgoing.put(mcp_pb2.RequestResources(sink_node=mcp_pb2.SinkNode(id="pilot-1.8"), collection=collection))

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    channel = grpc.insecure_channel(f"127.0.0.1:{serve_port}")
    call = mcp_grpc.ResourceSourceStub(channel).EstablishResourceStream(requests(), timeout=10)
    got, error = {}, None
    try:
        for response in call:
            got[response.collection] = response
            outgoing.put(mcp_pb2.RequestResources(sink_node=mcp_pb2.SinkNode(id="pilot-1.8"),
                                                  collection=response.collection, response_nonce=response.nonce))
            if set(got) == ALL_COLLECTIONS:
                break
    except grpc.RpcError as rpc_error:
        error = f"{rpc_error.code()}: {rpc_error.details()}"
    finally:
        outgoing.put(None)
        call.cancel()
        channel.close()
    assert error is None and set(got) == ALL_COLLECTIONS, f"stream ended with {error}; answered {sorted(got)}"
    assert [r.metadata.name for r in got[COLLECTIONS["Gateway"]].resources] == [f"{NS}/gw"]
    assert [r.metadata.name for r in got[COLLECTIONS["ServiceEntry"]].resources] == [f"{NS}/one"]
    assert all(not r.incremental and r.nonce for r in got.values()), got
