import Foundation
import IstioAPI
import Snapshot
import Testing

func serviceEntry(_ namespace: String, _ name: String, host: String, labels: [String: String] = [:]) -> ConfigResource {
    var entry = ServiceEntry()
    entry.hosts = [host]
    return ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: namespace, name: name), spec: .serviceEntry(entry), labels: labels)
}

@Suite struct SnapshotTests {
    @Test func replaceReportsAddedChangedRemoved() {
        let first = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com"), serviceEntry("a", "y", host: "y.com")])]))
        #expect(first.snapshot.version == 1)
        #expect(first.diff.changes[.serviceEntry]?.added == ["a/x", "a/y"])

        let second = first.snapshot.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x2.com"), serviceEntry("a", "z", host: "z.com")])]))
        #expect(second.snapshot.version == 2)
        #expect(second.diff.changes[.serviceEntry] == SnapshotDiff.Changes(added: ["a/z"], changed: ["a/x"], removed: ["a/y"]))
        #expect(second.snapshot[.serviceEntry].version == 2)
        #expect(first.snapshot.resources(.serviceEntry).map(\.key.name) == ["x", "y"], "the older snapshot is unchanged")
    }

    @Test func sameContentIsANoOpWithTheSameVersion() {
        let first = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com")])])).snapshot
        var again = serviceEntry("a", "x", host: "x.com")
        again.version = "another producer version"
        let next = first.applying(SnapshotUpdate([.serviceEntry: .replace([again])]))
        #expect(next.diff.isEmpty)
        #expect(next.snapshot.version == first.version)
    }

    /// The fields sit in a shared box: a copy changed must leave the original as it was, and
    /// equality still compares fields (two boxes with equal fields are equal).
    @Test func resourcesKeepValueSemantics() {
        let original = serviceEntry("a", "x", host: "x.com", labels: ["k": "v"])
        var copy = original
        #expect(copy == original)
        copy.labels = ["k": "w"]
        copy.sourceLocation = "file.yaml: document 1"
        copy.createTime = Date(timeIntervalSince1970: 5)
        #expect(original.labels == ["k": "v"])
        #expect(original.sourceLocation == nil)
        #expect(original.createTime == nil)
        #expect(copy.labels == ["k": "w"] && copy.sourceLocation == "file.yaml: document 1" && copy.createTime == Date(timeIntervalSince1970: 5))
        #expect(copy != original)
        #expect(!copy.hasSameContent(as: original))
        copy.createTime = nil
        #expect(copy.createTime == nil, "a field set to nil is nil, not left as it was")
        let twin = serviceEntry("a", "x", host: "x.com", labels: ["k": "v"])
        #expect(twin == original && twin.hasSameContent(as: original))
        #expect(serviceEntry("a", "x", host: "y.com", labels: ["k": "v"]) != original)
    }

    /// The content hash follows the fields it covers: a resource edited into another's content
    /// hashes like it, so a snapshot sees no change.
    @Test func editedContentIsRehashed() {
        let target = serviceEntry("a", "x", host: "y.com", labels: ["k": "w"])
        var edited = serviceEntry("a", "x", host: "x.com", labels: ["k": "w"])
        #expect(edited.contentHash != target.contentHash)
        edited.spec = target.spec
        #expect(edited.contentHash == target.contentHash)
        #expect(edited == target)
        let first = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([target])])).snapshot
        #expect(first.applying(SnapshotUpdate([.serviceEntry: .replace([edited])])).diff.isEmpty)
        edited.labels = ["k": "v"]
        #expect(edited.contentHash != target.contentHash)
        edited.labels = target.labels
        edited.annotations = ["note": "n"]
        #expect(edited.contentHash != target.contentHash)
        #expect(first.applying(SnapshotUpdate([.serviceEntry: .replace([edited])])).diff.changes[.serviceEntry]?.changed == ["a/x"])
    }

    @Test func labelsAreContent() {
        let first = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com")])])).snapshot
        let next = first.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com", labels: ["k": "v"])])]))
        #expect(next.diff.changes[.serviceEntry]?.changed == ["a/x"])
    }

    @Test func patchUpsertsAndRemoves() {
        let first = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com")])])).snapshot
        let next = first.applying(SnapshotUpdate([.serviceEntry: .patch(upsert: [serviceEntry("a", "y", host: "y.com")], remove: ["a/x", "a/missing"])]))
        #expect(next.diff.changes[.serviceEntry] == SnapshotDiff.Changes(added: ["a/y"], removed: ["a/x"]))
        #expect(next.snapshot.resources(.serviceEntry).map(\.key.name) == ["y"])
    }

    @Test func diffBetweenSnapshotsMatchesApply() {
        let a = Snapshot.empty.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "x.com")])])).snapshot
        let (b, diff) = a.applying(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "y", host: "y.com")])]))
        #expect(b.diff(from: a) == diff)
    }

    @Test func storePublishesChangesAndKeepsBoundedHistory() async {
        let store = SnapshotStore(historyLimit: 2)
        var changes = store.changes().makeAsyncIterator()
        let initial = await changes.next()
        #expect(initial?.snapshot.version == 0)
        for index in 0..<3 {
            store.apply(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "h\(index).com")])]))
        }
        store.apply(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("a", "x", host: "h2.com")])]))
        #expect(store.current.version == 3)
        #expect(store.history.map(\.version) == [2, 3])
        let published = await changes.next()
        #expect(published?.diff.changes[.serviceEntry]?.added == ["a/x"])
    }

    @Test func resourceNamesMustBeNamespaceSlashName() throws {
        #expect(try ConfigKey(kind: .gateway, resourceName: "ns/gw").namespace == "ns")
        for bad in ["gw", "/gw", "ns/", "a/b/c"] {
            #expect(throws: ResourceNameError.self) { try ConfigKey(kind: .gateway, resourceName: bad) }
        }
    }

    @Test func kindsAcceptEveryAPIVersionAlias() {
        #expect(ConfigKind(mcpTypeURL: "networking.istio.io/v1alpha3/VirtualService") == .virtualService)
        #expect(ConfigKind(mcpTypeURL: "networking.istio.io/v1beta1/VirtualService") == .virtualService)
        #expect(ConfigKind(mcpTypeURL: "networking.istio.io/v1/VirtualService") == .virtualService)
        #expect(ConfigKind(mcpTypeURL: "security.istio.io/v1/AuthorizationPolicy") == nil)
        #expect(ConfigKind(mcpTypeURL: "security.istio.io/v1beta1/PeerAuthentication") == .peerAuthentication)
        #expect(ConfigKind(mcpTypeURL: "networking.istio.io/v1/PeerAuthentication") == nil, "the group is part of the kind")
        #expect(ConfigKind(mcpTypeURL: "security.istio.io/v1alpha3/PeerAuthentication") == nil)
        #expect(ConfigKind(bodyTypeURL: "type.googleapis.com/istio.security.v1.PeerAuthentication") == .peerAuthentication)
        #expect(ConfigKind(bodyTypeURL: "type.googleapis.com/istio.networking.v1beta1.PeerAuthentication") == nil)
        #expect(ConfigKind.peerAuthentication.mcpTypeURL == "security.istio.io/v1/PeerAuthentication")
        #expect(ConfigKind.peerAuthentication.mcpTypeURL(version: "v1alpha3") == "security.istio.io/v1beta1/PeerAuthentication")
        #expect(ConfigKind.peerAuthentication.bodyTypeURL == "type.googleapis.com/istio.security.v1beta1.PeerAuthentication")
        #expect(ConfigKind(apiVersion: "security.istio.io/v1beta1", kind: "PeerAuthentication") == .peerAuthentication)
        #expect(ConfigKind(bodyTypeURL: "type.googleapis.com/istio.networking.v1beta1.Gateway") == .gateway)
        #expect(ConfigKind.envoyFilter.mcpTypeURL == "networking.istio.io/v1alpha3/EnvoyFilter")
        #expect(ConfigKind.allCases.map(\.legacyCollection) == [
            "istio/networking/v1alpha3/serviceentries", "istio/networking/v1alpha3/workloadentries",
            "istio/networking/v1alpha3/workloadgroups", "istio/networking/v1alpha3/destinationrules",
            "istio/networking/v1alpha3/gateways", "istio/networking/v1alpha3/virtualservices",
            "istio/networking/v1alpha3/sidecars", "istio/networking/v1alpha3/envoyfilters",
            "istio/security/v1beta1/peerauthentications",
        ])
        #expect(ConfigKind.networking == ConfigKind.allCases.filter { $0 != .peerAuthentication })
    }
}
