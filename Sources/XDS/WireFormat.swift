import Foundation
import SwiftProtobuf
import Translation

/// Protobuf wire-format assembly, so a route configuration's virtual hosts are serialized once and
/// serve both as VHDS resources and inside the whole configuration.
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
        var index = message.startIndex + 1
        var length: UInt64 = 0
        var shift: UInt64 = 0
        while index < message.endIndex {
            let byte = message[index]
            index += 1
            length |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return index - message.startIndex + Int(length) }
            shift += 7
        }
        return 0
    }
}
