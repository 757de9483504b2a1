import Foundation
import SwiftProtobuf
import Translation

/// Protobuf wire-format assembly, so a route configuration's virtual hosts are serialized once and
/// serve both as VHDS resources and inside the whole configuration; and reading, so a state-of-the-
/// world request's names can stay in their bytes (``SotWRequest``).
///
/// Deterministic encoding writes fields in field-number order: a message whose field 1 is a set
/// string starts with that field, and a `RouteConfiguration` is its `name` (1), then its
/// `virtual_hosts` (2), then every other field.
enum WireFormat {
    /// `message` bytes whose first field is the string field 1, with that string replaced.
    static func replacingLeadingString(in message: Data, with string: String) -> Data {
        var out = Data()
        if !string.isEmpty { appendLengthDelimited(field: 1, Data(string.utf8), to: &out) }
        out.append(message[(message.startIndex + leadingFieldLength(message))...])
        return out
    }

    /// The bytes of `configuration` with `virtualHosts` (each one's serialized bytes, in order)
    /// in place of its own virtual hosts.
    static func routeConfiguration(_ configuration: RouteConfiguration, virtualHosts: [Data]) -> Data {
        var rest = configuration
        rest.name = ""
        rest.virtualHosts = []
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let tail: Data = (try? rest.serializedBytes(options: options)) ?? Data()
        var out = Data()
        out.reserveCapacity(tail.count + configuration.name.utf8.count + virtualHosts.reduce(0) { $0 + $1.count + 6 })
        if !configuration.name.isEmpty { appendLengthDelimited(field: 1, Data(configuration.name.utf8), to: &out) }
        for host in virtualHosts { appendLengthDelimited(field: 2, host, to: &out) }
        out.append(tail)
        return out
    }

    static func appendLengthDelimited(field: Int, _ payload: Data, to out: inout Data) {
        appendVarint(UInt64(field << 3 | 2), to: &out)
        appendVarint(UInt64(payload.count), to: &out)
        out.append(payload)
    }

    static func appendVarint(_ value: UInt64, to out: inout Data) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    /// The length of the leading length-delimited field 1 (tag, length, payload); 0 when the
    /// message does not start with one.
    static func leadingFieldLength(_ message: Data) -> Int {
        guard message.first == 0x0a else { return 0 }
        return message.withUnsafeBytes { bytes in
            var index = 1
            guard let length = varint(bytes, &index) else { return 0 }
            return index + Int(length)
        }
    }
}

// MARK: - Reading

extension WireFormat {
    /// Copies every entry of the length-delimited `field` (tag, length and payload) into `selected`,
    /// counting them, and every other field into `rest`, both in order. False when the bytes are
    /// not a sequence of fields this walk knows (truncated, malformed, or groups).
    ///
    /// Consecutive entries of one kind are copied as one run: a request's names are one run of
    /// thousands of short entries.
    static func split(_ bytes: UnsafeRawBufferPointer, field: UInt64, into selected: inout Data, rest: inout Data, count: inout Int) -> Bool {
        var index = 0
        let selectedTag = field << 3 | 2
        var runStart = 0
        var runSelected = false
        func flush(upTo end: Int) {
            guard end > runStart else { return }
            let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])
            if runSelected { selected.append(contentsOf: run) } else { rest.append(contentsOf: run) }
            runStart = end
        }
        while index < bytes.count {
            let start = index
            guard let tag = varint(bytes, &index) else { return false }
            switch tag & 7 {
            case 0: guard varint(bytes, &index) != nil else { return false }
            case 1: index += 8
            case 5: index += 4
            case 2:
                guard let length = varint(bytes, &index), length <= UInt64(bytes.count - index) else { return false }
                index += Int(length)
            default: return false
            }
            guard index <= bytes.count, tag >> 3 != 0 else { return false }
            let isSelected = tag == selectedTag
            if isSelected { count += 1 }
            if isSelected != runSelected {
                flush(upTo: start)
                runSelected = isSelected
            }
        }
        flush(upTo: bytes.count)
        return true
    }

    /// The varint at `index`, advancing past it; nil when truncated or longer than ten bytes.
    static func varint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 70 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}
