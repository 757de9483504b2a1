import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf

/// A state-of-the-world `DiscoveryRequest` as it arrived: every field decoded but
/// `resource_names` (field 3), which stays in its wire bytes with a digest until a stream needs it.
///
/// Envoy repeats its whole subscription in every request: each EDS ACK of a router on a
/// 1,000-service mesh names its 3,000 clusters (150 KB). Decoding those into strings and looking
/// each up again was most of the server's work per endpoint change. A stream keeps the digest of
/// the names it last decoded for each type, and a request with the same digest leaves the
/// subscription as it is, undecoded (see `SotWStream.handle(_:config:)`).
public struct SotWRequest: Sendable {
    /// The request; its `resourceNames` are empty while ``encodedNames`` holds them.
    public var message: DiscoveryRequest
    /// `resource_names` as they arrived (each entry with its tag and length), with their digest;
    /// nil when the names are in ``message``.
    var encodedNames: EncodedNames?

    /// The wire bytes of `resource_names` and their digest.
    struct EncodedNames: Sendable {
        var bytes: Data
        var digest: NamesDigest
    }

    /// A request whose names are already decoded (per-type services, tests).
    public init(_ message: DiscoveryRequest) {
        self.message = message
    }

    init(message: DiscoveryRequest, encodedNames: EncodedNames?) {
        self.message = message
        self.encodedNames = encodedNames
    }

    /// Splits serialized `DiscoveryRequest` bytes into the decoded rest and the encoded names.
    /// Malformed bytes throw what the protobuf decoder says of them; bytes this split does not
    /// walk (groups) are decoded whole.
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws {
        var names = Data()
        var rest = Data()
        var count = 0
        if WireFormat.split(bytes, field: 3, into: &names, rest: &rest, count: &count) {
            message = try DiscoveryRequest(serializedBytes: rest)
            encodedNames = EncodedNames(bytes: names, digest: NamesDigest(names, count: count))
        } else {
            message = try DiscoveryRequest(serializedBytes: Data(bytes))
        }
    }

    /// The digest of the names as they arrived; nil when they came decoded.
    var namesDigest: NamesDigest? { encodedNames?.digest }

    /// The requested names, decoded from their wire bytes when they came encoded.
    func resourceNames() throws -> [String] {
        guard let encodedNames else { return message.resourceNames }
        do {
            return try DiscoveryRequest(serializedBytes: encodedNames.bytes).resourceNames
        } catch {
            throw RPCError(code: .invalidArgument, message: "DiscoveryRequest for \(message.typeURL): resource_names cannot be decoded: \(error)")
        }
    }
}

/// A 128-bit digest of a request's encoded `resource_names` and their count: two independent
/// multiply-mix lanes over the bytes, eight at a time.
///
/// Not cryptographic: a proxy that forged a collision would only keep its own previous subscription.
struct NamesDigest: Hashable, Sendable {
    var low: UInt64
    var high: UInt64
    var count: Int

    init(_ bytes: Data, count: Int) {
        self.count = count
        var a: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(bytes.count)
        var b: UInt64 = 0xc2b2_ae3d_27d4_eb4f &+ UInt64(count)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset + 8 <= raw.count {
                let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                a = Self.mix(a ^ word, 0xa076_1d64_78bd_642f) ^ (a >> 31)
                b = Self.mix(b &+ word, 0xe703_7ed1_a0b4_28db) ^ (b << 27 | b >> 37)
                offset += 8
            }
            var tail: UInt64 = 0
            for (shift, byte) in raw[offset...].enumerated() { tail |= UInt64(byte) << (8 * UInt64(shift)) }
            a = Self.mix(a ^ tail, 0x8ebc_6af0_9c88_c6e3)
            b = Self.mix(b &+ tail, 0x5899_65cc_7537_4cc3)
        }
        low = a
        high = b
    }

    /// The high and low halves of the full product, folded.
    private static func mix(_ x: UInt64, _ k: UInt64) -> UInt64 {
        let product = x.multipliedFullWidth(by: k)
        return product.high ^ product.low
    }
}

/// Deserializes ADS state-of-the-world requests into ``SotWRequest``s, names left encoded.
struct SotWRequestDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> SotWRequest {
        do {
            return try serializedMessageBytes.withUnsafeBytes { try SotWRequest(serializedBytes: $0) }
        } catch {
            throw RPCError(code: .invalidArgument, message: "Can't deserialize a DiscoveryRequest: \(error)")
        }
    }
}
