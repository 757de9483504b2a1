import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf

/// A DiscoveryResponse as received: the few envelope fields a simulated proxy needs to ACK, plus
/// the raw bytes (searched for change markers; decoded only once per distinct version, see ``NameCache``).
struct RawResponse: Sendable {
    var typeURL = ""
    var version = ""
    var nonce = ""
    var resourceCount = 0
    var bytes: [UInt8] = []

    /// Reads the top-level fields of a `DiscoveryResponse` (version_info=1, resources=2, type_url=4, nonce=5)
    /// or, with `delta`, of a `DeltaDiscoveryResponse` (system_version_info=1, resources=2, type_url=4, nonce=5).
    init(bytes: [UInt8]) throws {
        self.bytes = bytes
        var index = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
            throw RPCError(code: .dataLoss, message: "truncated varint")
        }
        while index < bytes.count {
            let tag = try varint()
            let field = tag >> 3
            switch tag & 7 {
            case 0: _ = try varint()
            case 1: index += 8
            case 5: index += 4
            case 2:
                let length = Int(try varint())
                guard index + length <= bytes.count else { throw RPCError(code: .dataLoss, message: "truncated field") }
                let range = index..<(index + length)
                switch field {
                case 1: version = String(decoding: bytes[range], as: UTF8.self)
                case 2: resourceCount += 1
                case 4: typeURL = String(decoding: bytes[range], as: UTF8.self)
                case 5: nonce = String(decoding: bytes[range], as: UTF8.self)
                default: break
                }
                index += length
            default:
                throw RPCError(code: .dataLoss, message: "unsupported wire type")
            }
        }
    }

    /// Whether `pattern` occurs in the bytes.
    func contains(_ pattern: [UInt8]) -> Bool {
        guard !pattern.isEmpty, pattern.count <= bytes.count else { return false }
        return bytes.withUnsafeBytes { haystack in
            pattern.withUnsafeBytes { needle in
                let (base, count, first) = (haystack.baseAddress!, haystack.count, Int32(pattern[0]))
                var offset = 0
                while offset <= count - needle.count {
                    guard let hit = memchr(base + offset, first, count - needle.count - offset + 1) else { return false }
                    let position = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + position, needle.baseAddress!, needle.count) == 0 { return true }
                    offset = position + 1
                }
                return false
            }
        }
    }
}

/// A marker as it appears in protobuf bytes: its length prefix then its UTF-8 (exact, no prefix matches).
func markerPattern(_ marker: String) -> [UInt8] {
    let utf8 = Array(marker.utf8)
    precondition(utf8.count < 128)
    return [UInt8(utf8.count)] + utf8
}

struct RawResponseDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> RawResponse {
        try RawResponse(bytes: serializedMessageBytes.withUnsafeBytes { Array($0.bindMemory(to: UInt8.self)) })
    }
}

/// Pre-encoded bytes written as they are (the ceiling server's responses).
struct RawBytes: Sendable {
    var bytes: [UInt8]
}

struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: RawBytes) throws -> Bytes { Bytes(message.bytes) }
}

struct ProtobufMessageSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes { Bytes(try message.serializedBytes() as [UInt8]) }
}

struct ProtobufMessageDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        try serializedMessageBytes.withUnsafeBytes { try Message(serializedBytes: Array($0.bindMemory(to: UInt8.self))) }
    }
}
