import Foundation
import Testing
@testable import XDS

@Suite struct XDSTypeTableTests {
    @Test func valuesAreKeptPerTypeAndListedInPushOrder() {
        var table = XDSTypeTable<String>()
        #expect(table.entries.isEmpty)
        #expect(table[.route] == nil)
        table[.route] = "r"
        table[.cluster] = "c"
        table[.endpoint] = "e"
        table[.endpoint]? += "2"
        table[.listener, default: "l"] += "!"
        #expect(table[.endpoint] == "e2")
        #expect(table.slotCount == 4, "no slot for VHDS until it is used (state of the world never does)")
        #expect(table.entries.map(\.type) == [.cluster, .endpoint, .listener, .route])
        #expect(table.entries.map(\.value) == ["c", "e2", "l!", "r"])
        #expect(table.removeValue(forKey: .cluster) == "c")
        #expect(table[.cluster] == nil)
        #expect(table.removeValue(forKey: .virtualHost) == nil)
        #expect(table.slotCount == 4)
        table[.virtualHost] = "v"
        #expect(table.slotCount == 5)
        table[.virtualHost] = nil
        table[.route] = nil
        #expect(table.entries.map(\.type) == [.endpoint, .listener])
        #expect(!table.entries.isEmpty)
    }

    /// The table's slots and `<` follow ``XDSType/ordinal``, which must restate the declaration order.
    @Test func ordinalsAreThePlacesInAllCases() {
        #expect(XDSType.allCases.map(\.ordinal) == Array(XDSType.allCases.indices))
        #expect(XDSType.allCases.sorted() == XDSType.allCases)
    }

    @Test func aValueTakenOutIsTheOnlyCopy() {
        var table = XDSTypeTable<Box>()
        table[.endpoint] = Box()
        var taken = table.removeValue(forKey: .endpoint)!
        #expect(isKnownUniquelyReferenced(&taken), "the table keeps no reference: the next write to the value does not copy it")
        table[.endpoint] = taken
        #expect(!isKnownUniquelyReferenced(&taken))
    }

    /// `/debug/syncz` and `swiftpilot proxy-status` read the types keyed by their short names.
    @Test func syncStatusEncodesTypesByShortName() throws {
        var status = ProxySyncStatus(connectionID: "gw-1", nodeID: "gw", proxyKind: "router", namespace: "ns", connectedAt: Date(timeIntervalSince1970: 0))
        status.types[.route, default: .init()].recordSent(version: "v7", nonce: "3", count: 1)
        status.types[.cluster, default: .init()].sentVersion = "v1"
        status.types[.cluster]?.ackedVersion = "v1"
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(status)) as? [String: Any]
        let types = try #require(json?["types"] as? [String: [String: Any]])
        #expect(Set(types.keys) == ["CDS", "RDS"])
        #expect(types["RDS"]?["sentVersion"] as? String == "v7")
        #expect(types["CDS"]?["ackedVersion"] as? String == "v1")

        let decoded = try JSONDecoder().decode(ProxySyncStatus.self, from: Data(#"""
            {"connectionID": "gw-1", "nodeID": "gw", "proxyKind": "router", "namespace": "ns", "connectedAt": 0,
             "transport": "delta", "types": {"EDS": {"sentVersion": "v2", "resourceCount": 4}, "XDS": {"resourceCount": 1}}}
            """#.utf8))
        #expect(decoded.types.entries.map(\.type) == [.endpoint])
        #expect(decoded.types[.endpoint]?.state == "STALE")
        #expect(decoded.types[.endpoint]?.resourceCount == 4)
    }

    /// The rejection fields are kept apart from the rest, yet read, compare and encode as plain fields.
    @Test func rejectionFieldsActAsPlainFields() throws {
        var status = ProxySyncStatus.TypeStatus()
        status.sentVersion = "v3"
        status.reject(message: "bad cluster", sources: ["DestinationRule ns/dr"])
        #expect(status.state == "NACKED")
        #expect(status.nackedVersion == "v3", "the rejected version is the one last sent")
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(status)) as? [String: Any])
        #expect(json["nack"] as? String == "bad cluster")
        #expect(json["nackedVersion"] as? String == "v3")
        #expect(json["nackSources"] as? [String] == ["DestinationRule ns/dr"])
        let decoded = try JSONDecoder().decode(ProxySyncStatus.TypeStatus.self, from: JSONEncoder().encode(status))
        #expect(decoded == status)
        var changed = decoded
        changed.nackedVersion = "v4"
        #expect(changed != status)
        #expect(changed.nack == "bad cluster", "setting one field keeps the others")

        status.clearRejection()
        #expect(status == { var fresh = ProxySyncStatus.TypeStatus(); fresh.sentVersion = "v3"; return fresh }())
        #expect(status.state == "STALE")
        let cleared = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(status)) as? [String: Any])
        #expect(Set(cleared.keys) == ["sentVersion", "resourceCount"])
    }
}

private final class Box {}
