import IstioAPI
import MCP
import Snapshot
import Testing

func entry(_ name: String, host: String, origin: String) -> ConfigResource {
    var spec = ServiceEntry()
    spec.hosts = [host]
    var port = Istio_Networking_V1alpha3_ServicePort()
    port.number = 80
    port.name = "http"
    spec.ports = [port]
    return ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: "ns", name: name), spec: .serviceEntry(spec), origin: origin)
}

@Suite struct ConfigAggregatorTests {
    @Test func firstConfiguredSourceWinsOnDuplicates() {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["a", "b"])
        aggregator.replace(source: "b", kind: .serviceEntry, with: [entry("x", host: "from-b", origin: "b")])
        aggregator.replace(source: "a", kind: .serviceEntry, with: [entry("x", host: "from-a", origin: "a"), entry("y", host: "y", origin: "a")])
        guard case .serviceEntry(let spec)? = store.current.resource(ConfigKey(kind: .serviceEntry, namespace: "ns", name: "x"))?.spec else {
            Issue.record("ns/x missing")
            return
        }
        #expect(spec.hosts == ["from-a"])
        #expect(aggregator.conflicts.map(\.winner) == ["a"])
        #expect(aggregator.conflicts.map(\.loser) == ["b"])
        #expect(store.current.resources(.serviceEntry).count == 2)
    }

    @Test func aSourceRemovingItsResourceRevealsTheOtherSourcesCopy() {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["a", "b"])
        aggregator.replace(source: "a", kind: .serviceEntry, with: [entry("x", host: "from-a", origin: "a")])
        aggregator.replace(source: "b", kind: .serviceEntry, with: [entry("x", host: "from-b", origin: "b")])
        let diff = aggregator.replace(source: "a", kind: .serviceEntry, with: [])
        #expect(diff.changes[.serviceEntry]?.changed == ["ns/x"])
        #expect(store.current.resource(ConfigKey(kind: .serviceEntry, namespace: "ns", name: "x"))?.origin == "b")
        #expect(aggregator.conflicts.isEmpty)
    }

    @Test func aPatchPatchesTheStoreOnlyWhenTheStoreHoldsThatSourcesCollectionAsItIs() {
        // Last-known-good content fills in until the source delivers; its first delivery is a patch.
        let lastKnownGood = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([entry("old", host: "old", origin: "a")])])).snapshot
        let store = SnapshotStore(initial: lastKnownGood)
        let aggregator = ConfigAggregator(store: store, sources: ["a"], fallback: lastKnownGood)
        aggregator.patch(source: "a", kind: .serviceEntry, upsert: [entry("x", host: "x", origin: "a")], remove: [])
        #expect(store.current.resources(.serviceEntry).map(\.key.name) == ["x"], "the source delivered: no more fill-in")
        // From then on the store holds the source's collection, and patches carry over.
        let diff = aggregator.patch(source: "a", kind: .serviceEntry, upsert: [entry("y", host: "y", origin: "a")], remove: ["ns/x"])
        #expect(diff.changes[.serviceEntry] == SnapshotDiff.Changes(added: ["ns/y"], removed: ["ns/x"]))
        #expect(store.current.resources(.serviceEntry).map(\.key.name) == ["y"])
    }

    @Test func syncedKindsAreTrackedPerSource() {
        let aggregator = ConfigAggregator(store: SnapshotStore(), sources: ["a"])
        #expect(aggregator.syncedKinds(source: "a").isEmpty)
        aggregator.replace(source: "a", kind: .gateway, with: [])
        #expect(aggregator.syncedKinds(source: "a") == [.gateway], "an empty response still counts as synced")
    }

    @Test func invalidResourcesAreDroppedAndRecordedTheRestApplies() {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["a"])
        var bad = ServiceEntry()
        bad.hosts = ["bad.example.com"]
        let invalid = ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: "ns", name: "bad"), spec: .serviceEntry(bad), origin: "a")
        aggregator.replace(source: "a", kind: .serviceEntry, with: [entry("x", host: "x.example.com", origin: "a"), invalid])
        #expect(store.current.resources(.serviceEntry).map(\.key.name) == ["x"])
        #expect(aggregator.rejections.map(\.error.field) == ["spec.ports"])
        #expect(aggregator.rejections.first?.error.resource == "ServiceEntry ns/bad")
        // Fixed: the rejection goes away.
        aggregator.replace(source: "a", kind: .serviceEntry, with: [entry("x", host: "x.example.com", origin: "a"), entry("bad", host: "bad.example.com", origin: "a")])
        #expect(aggregator.rejections.isEmpty)
        #expect(store.current.resources(.serviceEntry).count == 2)
    }
}
