import EnvoyAPI
import Foundation
import SwiftProtobuf
import Testing
@testable import XDS

/// The response writer must produce exactly swift-protobuf's bytes: Envoy and gRPC clients parse
/// them, and any difference would be a different message.
struct EncodedResponseTests {
    static func cluster(_ name: String, padding: Int = 0) -> EncodedResource {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = name
        cluster.altStatName = String(repeating: "x", count: padding)
        return EncodedResource(name: name, message: cluster)
    }

    static func check(_ response: DeltaDiscoveryResponse) throws {
        try check(DeltaResponse(response))
    }

    /// Written as swift-protobuf writes the whole message; read back, the same message.
    static func check<Message: BlockCarryingMessage & Equatable>(_ response: EncodedResponse<Message>) throws {
        let expected: [UInt8] = try response.materialized.serializedBytes()
        let written = try response.serializedBytes()
        #expect(written == expected)
        #expect(try Message(serializedBytes: written) == response.materialized)
    }

    /// `count` clusters named `cluster-<i>`, growing by `growth` bytes each.
    static func block(_ count: Int, growth: Int) -> EncodedBlock {
        EncodedBlock((0..<count).map { cluster("cluster-\($0)", padding: $0 * growth) })
    }

    @Test func aBlockIsWrittenAfterTheMessagesOwnResourcesAsThoseResourcesWouldBe() throws {
        let block = Self.block(50, growth: 7)
        var message = DeltaDiscoveryResponse()
        message.typeURL = XDSType.cluster.typeURL
        message.systemVersionInfo = "9"
        message.nonce = "4"
        message.removedResources = ["old"]
        let whole = DeltaResponse(message, block: block)
        #expect(whole.resources.count == 50 && whole.resourceNames.first == "cluster-0")
        try Self.check(whole)
        // Written twice from the cached bytes: the same.
        #expect(try whole.serializedBytes() == whole.materialized.serializedBytes())
        message.resources = [Self.cluster("first").deltaResource]
        let mixed = DeltaResponse(message, block: block)
        #expect(mixed.resourceNames.prefix(2) == ["first", "cluster-0"])
        try Self.check(mixed)
        try Self.check(DeltaResponse(message, block: EncodedBlock([])))
    }

    @Test func resourcesAsSentAreWrittenAsSwiftProtobufWritesThem() throws {
        var response = DeltaDiscoveryResponse()
        response.typeURL = XDSType.cluster.typeURL
        response.systemVersionInfo = "3f2a"
        response.nonce = "7"
        response.resources = ["a", "b", "outbound|80|v1|svc-1.bench.svc.cluster.local"].map { Self.cluster($0).deltaResource }
        response.removedResources = ["gone", "also-gone"]
        try Self.check(response)
    }

    @Test func largeBodiesNeedLongerLengthPrefixes() throws {
        var response = DeltaDiscoveryResponse()
        response.typeURL = XDSType.cluster.typeURL
        response.nonce = "1"
        // Bodies of about 100 B, 20 KB and 3 MB: one-, two-, three- and four-byte lengths.
        response.resources = [Self.cluster("small", padding: 100), Self.cluster("medium", padding: 20_000),
                              Self.cluster("large", padding: 3_000_000)].map(\.deltaResource)
        try Self.check(response)
    }

    @Test func aliasesAndResourcesWithoutABodyAreWritten() throws {
        var aliased = Self.cluster("http.8080/host:8080").deltaResource
        aliased.aliases = ["http.8080/host", "http.8080/host:8080", ""]
        var unknown = Envoy_Service_Discovery_V3_Resource()  // an on-demand host nothing serves
        unknown.name = "http.8080/nowhere"
        unknown.aliases = ["http.8080/nowhere"]
        var emptyBody = Envoy_Service_Discovery_V3_Resource()
        emptyBody.name = "empty"
        emptyBody.resource = Google_Protobuf_Any()
        var response = DeltaDiscoveryResponse()
        response.typeURL = XDSType.virtualHost.typeURL
        response.nonce = "2"
        response.resources = [aliased, unknown, emptyBody]
        try Self.check(response)
    }

    @Test func resourcesWithOtherFieldsAreSerializedAsMessages() throws {
        var withTTL = Self.cluster("ttl").deltaResource
        withTTL.ttl = .init(seconds: 30)
        var cached = Self.cluster("cached").deltaResource
        cached.cacheControl.doNotCache = true
        #expect(!ResponseEncoding.isPlain(withTTL))
        #expect(!ResponseEncoding.isPlain(cached))
        #expect(ResponseEncoding.isPlain(Self.cluster("plain").deltaResource))
        var response = DeltaDiscoveryResponse()
        response.typeURL = XDSType.cluster.typeURL
        response.systemVersionInfo = "v"
        response.nonce = "3"
        response.resources = [Self.cluster("plain").deltaResource, withTTL, cached]
        response.controlPlane.identifier = "swiftpilot"
        try Self.check(response)
    }

    @Test func anEmptyResponseIsItsEnvelope() throws {
        var response = DeltaDiscoveryResponse()
        try Self.check(response)
        response.typeURL = XDSType.endpoint.typeURL
        response.removedResources = ["a"]
        try Self.check(response)
    }

    @Test func varintSizes() {
        for (value, size) in [(0, 1), (1, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (2_097_151, 3), (2_097_152, 4)] {
            #expect(ResponseEncoding.varintSize(value) == size, "\(value)")
        }
    }

    // MARK: - State of the world

    @Test func stateOfTheWorldResponsesAreWrittenAsSwiftProtobufWritesThem() throws {
        var message = DiscoveryResponse()
        (message.typeURL, message.versionInfo, message.nonce, message.canary) = (XDSType.cluster.typeURL, "a1", "12", true)
        let block = Self.block(40, growth: 500)
        let whole = SotWResponse(message, block: block)
        #expect(whole.resources.count == 40)
        try Self.check(whole)
        // Own resources, one with unknown fields (serialized as a message), before the block.
        var odd = Self.cluster("odd").any
        try odd.merge(serializedBytes: [0xa0, 0x06, 0x01] as [UInt8])  // field 100, varint 1: unknown to Any
        #expect(!odd.unknownFields.data.isEmpty)
        message.resources = [Self.cluster("first").any, odd, Google_Protobuf_Any()]
        try Self.check(SotWResponse(message, block: block))
        try Self.check(SotWResponse(message))
        try Self.check(SotWResponse(DiscoveryResponse()))
    }
}
