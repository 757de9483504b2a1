import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf

/// A discovery response as the streams build it: the protobuf message, plus, for an answer with
/// every resource of a type, the class's ``EncodedBlock`` of them (sent after the message's own
/// resources) instead of a copy of each resource per proxy. Reads through to the message
/// (`response.nonce`, `response.versionInfo`, …).
@dynamicMemberLookup
public struct EncodedResponse<Message: BlockCarryingMessage>: Sendable {
    public var message: Message
    public var block: EncodedBlock?

    public init(_ message: Message, block: EncodedBlock? = nil) {
        self.message = message
        self.block = block
    }

    public subscript<Value>(dynamicMember keyPath: KeyPath<Message, Value>) -> Value { message[keyPath: keyPath] }

    public var typeURL: String { message.typeURL }
    public var nonce: String { message.nonce }

    /// Every resource sent, as messages (the block's too).
    public var resources: [Message.Resource] { message.resources + (block.map(Message.resources(of:)) ?? []) }

    /// The response as one protobuf message.
    public var materialized: Message {
        guard block != nil else { return message }
        var whole = message
        whole.resources = resources
        return whole
    }

    /// The wire bytes (what ``EncodedResponseSerializer`` writes).
    public func serializedBytes() throws -> [UInt8] { try ResponseEncoding.bytes(of: self) }
}

public typealias SotWResponse = EncodedResponse<DiscoveryResponse>
public typealias DeltaResponse = EncodedResponse<DeltaDiscoveryResponse>

extension EncodedResponse where Message == DeltaDiscoveryResponse {
    /// The names of the resources sent, in order.
    public var resourceNames: [String] { message.resources.map(\.name) + (block?.resources.map(\.name) ?? []) }
}

/// `DiscoveryResponse` and `DeltaDiscoveryResponse`: a version string as field 1 and the
/// resources as the repeated field 2.
public protocol BlockCarryingMessage: SwiftProtobuf.Message, Sendable {
    associatedtype Resource: Sendable
    /// Field 1: `version_info` / `system_version_info`.
    var leadingVersion: String { get set }
    /// Field 2.
    var resources: [Resource] { get set }
    var typeURL: String { get }
    var nonce: String { get }
    static func resources(of block: EncodedBlock) -> [Resource]
    /// The resources' packed bodies' total size.
    static func bodyBytes(of resources: [Resource]) -> Int
    /// The block's resources as field-2 entries of this message.
    static func wire(of block: EncodedBlock) throws -> [UInt8]
    /// Resources as field-2 entries of this message.
    static func entries(_ resources: [Resource]) throws -> [UInt8]
}

extension DiscoveryResponse: BlockCarryingMessage {
    public var leadingVersion: String {
        get { versionInfo }
        set { versionInfo = newValue }
    }
    public static func resources(of block: EncodedBlock) -> [Google_Protobuf_Any] { block.resources.map(\.any) }
    public static func bodyBytes(of resources: [Google_Protobuf_Any]) -> Int { resources.reduce(0) { $0 + $1.value.count } }
    public static func wire(of block: EncodedBlock) throws -> [UInt8] { try block.wire(stateOfTheWorld: true) }
    public static func entries(_ resources: [Google_Protobuf_Any]) throws -> [UInt8] { try ResponseEncoding.entries(resources) }
}

extension DeltaDiscoveryResponse: BlockCarryingMessage {
    public var leadingVersion: String {
        get { systemVersionInfo }
        set { systemVersionInfo = newValue }
    }
    public static func resources(of block: EncodedBlock) -> [Envoy_Service_Discovery_V3_Resource] { block.resources.map(\.deltaResource) }
    public static func bodyBytes(of resources: [Envoy_Service_Discovery_V3_Resource]) -> Int {
        resources.reduce(0) { $0 + $1.resource.value.count }
    }
    public static func wire(of block: EncodedBlock) throws -> [UInt8] { try block.wire(stateOfTheWorld: false) }
    public static func entries(_ resources: [Envoy_Service_Discovery_V3_Resource]) throws -> [UInt8] { try ResponseEncoding.entries(resources) }
}

/// Writes ``EncodedResponse``s: the bytes swift-protobuf writes for their
/// ``EncodedResponse/materialized`` message, field for field, with the block copied as encoded and
/// the message's own resources framed around the bytes they hold rather than traversed as messages.
struct EncodedResponseSerializer<Message: BlockCarryingMessage>: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: EncodedResponse<Message>) throws -> Bytes {
        do {
            return try ResponseEncoding.bytes(of: message)
        } catch {
            throw RPCError(code: .invalidArgument, message: "Can't serialize a \(Message.protoMessageName).", cause: error)
        }
    }
}

/// The generated per-type services write protobuf messages: they get materialized responses.
struct MaterializingWriter<Message: BlockCarryingMessage>: RPCWriterProtocol {
    let base: RPCWriter<Message>

    func write(_ element: EncodedResponse<Message>) async throws { try await base.write(element.materialized) }

    func write(contentsOf elements: some Sequence<EncodedResponse<Message>>) async throws {
        try await base.write(contentsOf: elements.map(\.materialized))
    }
}

enum ResponseEncoding {
    /// `response` serialized: the version (1), the resources (2), then every other field as
    /// swift-protobuf writes them (swift-protobuf's own order and bytes).
    static func bytes<Message, Bytes: GRPCContiguousBytes>(of response: EncodedResponse<Message>) throws -> Bytes {
        var rest = response.message
        rest.leadingVersion = ""
        rest.resources = []
        let tail: [UInt8] = try rest.serializedBytes()
        var head: [UInt8] = []
        let version = response.message.leadingVersion
        if !version.isEmpty {
            head = [UInt8(1 << 3 | 2)]
            appendVarint(version.utf8.count, to: &head)
            head += version.utf8
        }
        let own = response.message.resources.isEmpty ? [] : try Message.entries(response.message.resources)
        let block = try response.block.map(Message.wire(of:)) ?? []
        var out = Bytes(repeating: 0, count: head.count + own.count + block.count + tail.count)
        out.withUnsafeMutableBytes { buffer in
            var offset = 0
            for part in [head, own, block, tail] {
                part.withUnsafeBytes { bytes in
                    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
                    (buffer.baseAddress! + offset).copyMemory(from: base, byteCount: bytes.count)
                    offset += bytes.count
                }
            }
        }
        return out
    }

    /// Delta resources as field-2 entries. Resources with only a version, a packed body, a name
    /// and aliases (all SwiftPilot sets) are framed directly; others are serialized as messages.
    static func entries(_ resources: [Envoy_Service_Discovery_V3_Resource]) throws -> [UInt8] {
        try frame(resources, plain: isPlain, size: { resource in
            let body = bodySize(resource)
            return (entrySize(resource, bodySize: body), body)
        }, write: { writer, resource, bodySize in
            writer.string(field: 1, resource.version)
            if resource.hasResource {
                let body = resource.resource
                writer.tag(field: 2)
                writer.varint(bodySize)
                writer.string(field: 1, body.typeURL)
                writer.data(field: 2, body.value)
            }
            writer.string(field: 3, resource.name)
            for alias in resource.aliases { writer.string(field: 4, alias, always: true) }
        }, fallback: { resources in
            var message = DeltaDiscoveryResponse()
            message.resources = resources
            return try message.serializedBytes()
        })
    }

    /// Packed resources (state of the world) as field-2 entries: type URL (1) and value (2).
    static func entries(_ resources: [Google_Protobuf_Any]) throws -> [UInt8] {
        try frame(resources, plain: { $0.unknownFields.data.isEmpty }, size: { any in
            (optionalFieldSize(any.typeURL.utf8.count) + optionalFieldSize(any.value.count), 0)
        }, write: { writer, any, _ in
            writer.string(field: 1, any.typeURL)
            writer.data(field: 2, any.value)
        }, fallback: { resources in
            var message = DiscoveryResponse()
            message.resources = resources
            return try message.serializedBytes()
        })
    }

    /// Frames each item as a field-2 entry in two passes (sizes, then bytes); an item that is not
    /// `plain` is serialized as a message. `size` gives an item's payload size and a nested size
    /// for `write`.
    private static func frame<Item: SwiftProtobuf.Message>(
        _ items: [Item], plain: (Item) -> Bool, size: (Item) -> (payload: Int, nested: Int),
        write: (inout Writer, Item, Int) -> Void, fallback: ([Item]) throws -> [UInt8]
    ) throws -> [UInt8] {
        var payloads = [Int](repeating: 0, count: items.count)
        var nested = [Int](repeating: 0, count: items.count)
        var serialized: [Int: [UInt8]] = [:]
        var total = 0
        for index in items.indices {
            if plain(items[index]) {
                (payloads[index], nested[index]) = size(items[index])
            } else {
                let bytes: [UInt8] = try items[index].serializedBytes()
                serialized[index] = bytes
                payloads[index] = bytes.count
            }
            total += 1 + varintSize(payloads[index]) + payloads[index]
        }
        var exact = false
        let out = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var writer = Writer(buffer: UnsafeMutableRawBufferPointer(buffer))
            for index in items.indices {
                writer.tag(field: 2)
                writer.varint(payloads[index])
                if let bytes = serialized[index] {
                    writer.bytes(bytes)
                } else {
                    write(&writer, items[index], nested[index])
                }
            }
            exact = !writer.overflowed && writer.offset == total
            initialized = exact ? total : 0
        }
        // The passes disagree only through a bug here: then swift-protobuf writes them.
        return exact ? out : try fallback(items)
    }

    static func appendVarint(_ value: Int, to out: inout [UInt8]) {
        var value = UInt64(value)
        while value >= 0x80 {
            out.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    /// Only the fields written here (version, resource, name, aliases).
    static func isPlain(_ resource: Envoy_Service_Discovery_V3_Resource) -> Bool {
        !resource.hasTtl && !resource.hasCacheControl && !resource.hasMetadata && !resource.hasResourceName
            && resource.unknownFields.data.isEmpty && (!resource.hasResource || resource.resource.unknownFields.data.isEmpty)
    }

    /// The packed body (`Any`): type URL (1) and value (2).
    private static func bodySize(_ resource: Envoy_Service_Discovery_V3_Resource) -> Int {
        guard resource.hasResource else { return 0 }
        let body = resource.resource
        return optionalFieldSize(body.typeURL.utf8.count) + optionalFieldSize(body.value.count)
    }

    private static func entrySize(_ resource: Envoy_Service_Discovery_V3_Resource, bodySize: Int) -> Int {
        var size = optionalFieldSize(resource.version.utf8.count) + optionalFieldSize(resource.name.utf8.count)
        if resource.hasResource { size += 1 + varintSize(bodySize) + bodySize }
        for alias in resource.aliases { size += stringFieldSize(alias.utf8.count) }
        return size
    }

    /// A length-delimited field of `length` bytes (tag, length, payload), written even when empty.
    private static func stringFieldSize(_ length: Int) -> Int { 1 + varintSize(length) + length }

    /// The same, left out when empty (proto3 singular fields).
    private static func optionalFieldSize(_ length: Int) -> Int { length == 0 ? 0 : stringFieldSize(length) }

    static func varintSize(_ value: Int) -> Int {
        let bits = 64 - UInt64(value).leadingZeroBitCount
        return max(1, (bits + 6) / 7)
    }

    /// Writes into a buffer sized by pass 1, never past its end. Field numbers here are below 16:
    /// one tag byte.
    struct Writer {
        let buffer: UnsafeMutableRawBufferPointer
        var offset = 0
        /// A write did not fit (pass 1 undercounted): stop writing.
        var overflowed = false

        private mutating func fits(_ count: Int) -> Bool {
            if offset + count > buffer.count { overflowed = true }
            return !overflowed
        }

        mutating func tag(field: Int) {
            guard fits(1) else { return }
            buffer[offset] = UInt8(field << 3 | 2)
            offset += 1
        }

        mutating func varint(_ value: Int) {
            guard fits(ResponseEncoding.varintSize(value)) else { return }
            var value = UInt64(value)
            while value >= 0x80 {
                buffer[offset] = UInt8(value & 0x7f) | 0x80
                offset += 1
                value >>= 7
            }
            buffer[offset] = UInt8(value)
            offset += 1
        }

        mutating func raw(_ source: UnsafeRawBufferPointer) {
            guard let base = source.baseAddress, source.count > 0, fits(source.count) else { return }
            (buffer.baseAddress! + offset).copyMemory(from: base, byteCount: source.count)
            offset += source.count
        }

        mutating func bytes(_ bytes: [UInt8]) { bytes.withUnsafeBytes { raw($0) } }

        /// A string field; an empty one only with `always` (repeated fields).
        mutating func string(field: Int, _ string: String, always: Bool = false) {
            var string = string
            let count = string.utf8.count
            guard count > 0 || always else { return }
            tag(field: field)
            varint(count)
            string.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
        }

        mutating func data(field: Int, _ data: Data) {
            guard !data.isEmpty else { return }
            tag(field: field)
            varint(data.count)
            data.withUnsafeBytes { raw($0) }
        }
    }
}
