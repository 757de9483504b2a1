import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf

/// A delta response as ``DeltaStream`` builds it: the protobuf message, plus, for an answer with
/// every resource of a type, the class's ``EncodedBlock`` of them (sent after the message's own
/// resources) instead of a copy of each resource per proxy.
public struct DeltaResponse: Sendable {
    public var message: DeltaDiscoveryResponse
    public var block: EncodedBlock?

    public init(_ message: DeltaDiscoveryResponse, block: EncodedBlock? = nil) {
        self.message = message
        self.block = block
    }

    public var typeURL: String { message.typeURL }
    public var nonce: String { message.nonce }
    public var systemVersionInfo: String { message.systemVersionInfo }
    public var removedResources: [String] { message.removedResources }

    /// Every resource sent, as messages (the block's too).
    public var resources: [Envoy_Service_Discovery_V3_Resource] {
        message.resources + (block?.resources.map(\.deltaResource) ?? [])
    }

    /// The names of the resources sent, in order.
    public var resourceNames: [String] { message.resources.map(\.name) + (block?.resources.map(\.name) ?? []) }

    /// The wire bytes (what ``DeltaResponseSerializer`` writes).
    public func serializedBytes() throws -> [UInt8] { try DeltaResponseEncoding.bytes(of: self) }

    /// The response as one protobuf message.
    public var materialized: DeltaDiscoveryResponse {
        guard block != nil else { return message }
        var whole = message
        whole.resources = resources
        return whole
    }
}

/// Writes ``DeltaResponse``s for delta ADS: the bytes swift-protobuf writes for their
/// ``DeltaResponse/materialized`` message, field for field, with the block copied as encoded and
/// the message's own resources framed around the bytes they hold (name, version, packed body)
/// rather than traversed as messages.
struct DeltaResponseSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: DeltaResponse) throws -> Bytes {
        do {
            return try DeltaResponseEncoding.bytes(of: message)
        } catch {
            throw RPCError(code: .invalidArgument, message: "Can't serialize a DeltaDiscoveryResponse.", cause: error)
        }
    }
}

/// The per-type delta services (generated, writing `DeltaDiscoveryResponse`) send materialized responses.
struct MaterializingDeltaWriter: RPCWriterProtocol {
    let base: RPCWriter<DeltaDiscoveryResponse>

    func write(_ element: DeltaResponse) async throws { try await base.write(element.materialized) }

    func write(contentsOf elements: some Sequence<DeltaResponse>) async throws {
        try await base.write(contentsOf: elements.map(\.materialized))
    }
}

enum DeltaResponseEncoding {
    /// `response` serialized: `system_version_info` (1), the resources (2), then every other field
    /// as swift-protobuf writes them (swift-protobuf's own order and bytes).
    static func bytes<Bytes: GRPCContiguousBytes>(of response: DeltaResponse) throws -> Bytes {
        var rest = response.message
        rest.systemVersionInfo = ""
        rest.resources = []
        let tail: [UInt8] = try rest.serializedBytes()
        var head: [UInt8] = []
        let version = response.message.systemVersionInfo
        if !version.isEmpty {
            head = [UInt8(1 << 3 | 2)]
            appendVarint(version.utf8.count, to: &head)
            head += version.utf8
        }
        let own = response.message.resources.isEmpty ? [] : try entries(response.message.resources)
        let block = try response.block?.wire() ?? []
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

    /// `resources` as the repeated field 2 of a delta response. Resources with only a version,
    /// a packed body, a name and aliases (all SwiftPilot sets) are framed directly; others are
    /// serialized as messages.
    static func entries(_ resources: [Envoy_Service_Discovery_V3_Resource]) throws -> [UInt8] {
        // Pass 1: sizes.
        var bodySizes = [Int](repeating: 0, count: resources.count)
        var entrySizes = [Int](repeating: 0, count: resources.count)
        var serialized: [Int: [UInt8]] = [:]
        var total = 0
        for index in resources.indices {
            let size: Int
            if isPlain(resources[index]) {
                let body = bodySize(resources[index])
                bodySizes[index] = body
                size = entrySize(resources[index], bodySize: body)
            } else {
                let bytes: [UInt8] = try resources[index].serializedBytes()
                serialized[index] = bytes
                size = bytes.count
            }
            entrySizes[index] = size
            total += 1 + varintSize(size) + size
        }
        // Pass 2: bytes.
        var exact = false
        let out = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var writer = Writer(buffer: UnsafeMutableRawBufferPointer(buffer))
            for index in resources.indices {
                writer.tag(field: 2)
                writer.varint(entrySizes[index])
                if let bytes = serialized[index] {
                    writer.bytes(bytes)
                    continue
                }
                let resource = resources[index]
                writer.string(field: 1, resource.version)
                if resource.hasResource {
                    let body = resource.resource
                    writer.tag(field: 2)
                    writer.varint(bodySizes[index])
                    writer.string(field: 1, body.typeURL)
                    writer.data(field: 2, body.value)
                }
                writer.string(field: 3, resource.name)
                for alias in resource.aliases { writer.string(field: 4, alias, always: true) }
            }
            exact = !writer.overflowed && writer.offset == total
            initialized = exact ? total : 0
        }
        // Pass 1 and 2 disagree only through a bug here: then swift-protobuf writes them.
        guard exact else {
            var message = DeltaDiscoveryResponse()
            message.resources = resources
            return try message.serializedBytes()
        }
        return out
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
    private struct Writer {
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
            guard fits(DeltaResponseEncoding.varintSize(value)) else { return }
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
