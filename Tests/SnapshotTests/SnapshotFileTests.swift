import Foundation
import IstioAPI
import Snapshot
import Testing

@Suite struct SnapshotFileTests {
    func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "swiftpilot-snapshot-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func sample() -> Snapshot {
        var gateway = Gateway()
        gateway.selector = ["istio": "ingressgateway"]
        var created = serviceEntry("ns", "x", host: "x.com", labels: ["app": "x"])
        created.createTime = Date(timeIntervalSince1970: 1_700_000_000)
        let update = SnapshotUpdate([
            .serviceEntry: .replace([created]),
            .gateway: .replace([ConfigResource(key: ConfigKey(kind: .gateway, namespace: "ns", name: "gw"), spec: .gateway(gateway), origin: "xds://a:1")]),
        ])
        return Snapshot(version: 41).applying(update).snapshot
    }

    @Test func roundTripKeepsVersionAndContent() throws {
        let file = SnapshotFile(directory: temporaryDirectory())
        let snapshot = sample()
        try file.write(snapshot)
        let loaded = try #require(try file.load())
        #expect(loaded.version == 42)
        #expect(loaded.diff(from: snapshot).isEmpty)
        #expect(loaded.resource(ConfigKey(kind: .gateway, namespace: "ns", name: "gw"))?.origin == "xds://a:1")
        #expect(loaded.resource(ConfigKey(kind: .serviceEntry, namespace: "ns", name: "x"))?.createTime == Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test func noFileIsNil() throws {
        #expect(try SnapshotFile(directory: temporaryDirectory()).load() == nil)
    }

    @Test(arguments: [
        ("not json at all", "unreadable envelope"),
        (#"{"format":"something-else","formatVersion":1,"checksum":"0","payload":"e30="}"#, "format 'something-else'"),
        (#"{"format":"swiftpilot-snapshot","formatVersion":99,"checksum":"0","payload":"e30="}"#, "format version 99"),
        (#"{"format":"swiftpilot-snapshot","formatVersion":1,"checksum":"0","payload":"e30="}"#, "checksum"),
    ])
    func corruptOrForeignFilesAreClearErrors(content: String, expected: String) throws {
        let directory = temporaryDirectory()
        let file = SnapshotFile(directory: directory)
        try content.write(toFile: file.path, atomically: true, encoding: .utf8)
        do {
            _ = try file.load()
            Issue.record("loaded a bad file")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
            #expect(error.description.contains(file.path))
        }
    }

    @Test func aFlippedByteFailsTheChecksum() throws {
        let file = SnapshotFile(directory: temporaryDirectory())
        try file.write(sample())
        var text = try String(contentsOfFile: file.path, encoding: .utf8)
        // Change one base64 character of the payload.
        let range = try #require(text.range(of: "\"payload\":\""))
        let index = text.index(range.upperBound, offsetBy: 10)
        text.replaceSubrange(index...index, with: text[index] == "A" ? "B" : "A")
        try text.write(toFile: file.path, atomically: true, encoding: .utf8)
        #expect(throws: SnapshotFile.LoadError.self) { try file.load() }
    }

    @Test func persistWritesEachChangeButNotTheStartingState() async throws {
        let file = SnapshotFile(directory: temporaryDirectory())
        let store = SnapshotStore()
        let task = Task { await file.persist(store) { error in Issue.record("\(error)") } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(try file.load() == nil, "the empty starting state is not written")
        store.apply(SnapshotUpdate([.serviceEntry: .replace([serviceEntry("ns", "x", host: "x.com")])]))
        var loaded: Snapshot?
        for _ in 0..<100 where loaded == nil {
            try await Task.sleep(for: .milliseconds(20))
            loaded = try file.load()
        }
        #expect(loaded?.version == 1)
        task.cancel()
    }
}
