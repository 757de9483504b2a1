import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
@testable import XDS

/// `request` as the ADS deserializer reads it off the wire: names left encoded.
func wire(_ request: DiscoveryRequest) throws -> SotWRequest {
    try wire(request.serializedBytes() as Data)
}

func wire(_ bytes: Data) throws -> SotWRequest {
    try bytes.withUnsafeBytes { try SotWRequest(serializedBytes: $0) }
}

@Suite struct SotWRequestTests {
    func fullRequest() -> DiscoveryRequest {
        var message = request(.endpoint, names: ["outbound|80||a.example", "outbound|80|v1|a.example", "ü-ß"],
                              nonce: "7", version: "v3", error: "rejected")
        message.node.id = "router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local"
        message.node.metadata.fields["SWIFTPILOT_VHDS"] = Google_Protobuf_Value(stringValue: "false")
        return message
    }

    @Test func aRequestIsEveryFieldDecodedButItsNamesWhichDecodeOnDemand() throws {
        let original = fullRequest()
        let split = try wire(original)
        #expect(split.message.resourceNames.isEmpty)
        #expect(split.encodedNames?.digest.count == 3)
        #expect(try split.resourceNames() == original.resourceNames)
        var joined = split.message
        joined.resourceNames = try split.resourceNames()
        #expect(joined == original)
    }

    @Test func namesSplitAroundOtherFieldsKeepTheirOrderAndTheLastSingularFieldWins() throws {
        func part(_ build: (inout DiscoveryRequest) -> Void) throws -> Data {
            var message = DiscoveryRequest()
            build(&message)
            return try message.serializedBytes()
        }
        let bytes = try part { $0.resourceNames = ["a"] } + part { $0.typeURL = "first" } + part { $0.resourceNames = ["b", "c"] }
            + part { $0.typeURL = XDSType.endpoint.typeURL }
        let split = try wire(bytes)
        let whole = try DiscoveryRequest(serializedBytes: bytes)
        #expect(try split.resourceNames() == ["a", "b", "c"])
        #expect(split.message.typeURL == XDSType.endpoint.typeURL)
        var joined = split.message
        joined.resourceNames = try split.resourceNames()
        #expect(joined == whole)
    }

    @Test func bytesTheWalkDoesNotKnowAreDecodedWholeAndMalformedBytesAreRejected() throws {
        // An unknown group field (15, start and end group), then the names: the protobuf decoder reads it.
        let group = Data([15 << 3 | 3, 15 << 3 | 4])
        let withGroup = try wire(group + (request(.cluster, names: ["x", "y"]).serializedBytes() as Data))
        #expect(withGroup.encodedNames == nil)
        #expect(try withGroup.resourceNames() == ["x", "y"])
        #expect(withGroup.message.typeURL == XDSType.cluster.typeURL)

        let full: Data = try fullRequest().serializedBytes()
        #expect(throws: (any Error).self) { try wire(full.dropLast(3)) }
        #expect(throws: (any Error).self) { try SotWRequestDeserializer().deserialize(Array(full.dropLast(3))) }
    }

    @Test func namesThatAreNotUTF8AreRejectedWhenAStreamNeedsThem() throws {
        var bytes: Data = try request(.endpoint).serializedBytes()
        bytes += Data([3 << 3 | 2, 2, 0xff, 0xfe])
        let split = try wire(bytes)
        #expect(split.encodedNames?.digest.count == 1)
        let error = try #require(throws: RPCError.self) { try split.resourceNames() }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("resource_names"))
        var stream = SotWStream()
        #expect(throws: RPCError.self) { try stream.handle(split, config: config()) }
    }

    @Test func theDigestTellsNameListsApartByContentOrderAndCount() throws {
        func digest(_ names: [String]) throws -> NamesDigest? { try wire(request(.endpoint, names: names)).namesDigest }
        let base = try digest(["c0", "c1", "c2"])
        #expect(base != nil)
        #expect(try digest(["c0", "c1", "c2"]) == base)
        #expect(try digest(["c0", "c1", "c3"]) != base)
        #expect(try digest(["c0", "c2", "c1"]) != base)
        #expect(try digest(["c0", "c1"]) != base)
        #expect(try digest([]) != base)
        // Names longer than a word, differing only in the last byte of the tail.
        let long = (0..<40).map { "outbound|8080|v1|service-\($0).example.svc.cluster.local" }
        #expect(try digest(long) != digest(long.dropLast() + [String(long.last!.dropLast()) + "m"]))
    }

    @Test func aStreamTakesEncodedNamesLikeDecodedOnesAndSkipsNamesItTookAlready() throws {
        let current = config(clusters: 3)
        var stream = SotWStream()
        let first = try stream.handle(wire(request(.endpoint, names: ["c0", "c1", "c2"])), config: current)[0]
        #expect(names(first) == ["c0", "c1", "c2"])
        #expect(stream.state(.endpoint)?.names == current.names[.endpoint])
        let taken = try #require(stream.state(.endpoint)?.namesDigest)

        // The same names again, as an ACK: not answered.
        #expect(try stream.handle(wire(request(.endpoint, names: ["c0", "c1", "c2"], nonce: first.nonce, version: first.versionInfo)),
                                  config: current).isEmpty)
        #expect(stream.events == [.ack(.endpoint, nonce: first.nonce)])

        // Bytes carrying the digest of the names taken are not decoded: these could not be.
        var ack = request(.endpoint, nonce: first.nonce, version: first.versionInfo)
        ack.resourceNames = []
        let undecodable = SotWRequest(message: ack, encodedNames: .init(bytes: Data([3 << 3 | 2, 1, 0xff]), digest: taken))
        #expect(try stream.handle(undecodable, config: current).isEmpty)
        #expect(stream.state(.endpoint)?.names == current.names[.endpoint])

        // Same count, another list: taken, and answered.
        let narrowed = try stream.handle(wire(request(.endpoint, names: ["c1", "c0", "c1"], nonce: first.nonce, version: first.versionInfo)),
                                         config: current)
        #expect(narrowed.count == 1)
        #expect(stream.state(.endpoint)?.names == ["c0", "c1"])
        #expect(stream.state(.endpoint)?.namesDigest != taken)

        // Decoded names forget the digest, so the next encoded list is decoded again.
        _ = stream.handle(request(.endpoint, names: ["c0", "c1", "c2"], nonce: narrowed[0].nonce, version: narrowed[0].versionInfo),
                          config: current)
        #expect(stream.state(.endpoint)?.namesDigest == nil)
        #expect(stream.state(.endpoint)?.names == current.names[.endpoint])
    }
}
