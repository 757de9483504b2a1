import Foundation

/// Identifies one config resource: kind plus `namespace/name`.
public struct ConfigKey: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var kind: ConfigKind
    public var namespace: String
    public var name: String

    public init(kind: ConfigKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/name`, the MCP resource name.
    public var resourceName: String { "\(namespace)/\(name)" }
    public var description: String { "\(kind) \(resourceName)" }

    public static func < (lhs: ConfigKey, rhs: ConfigKey) -> Bool {
        (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
    }
}

/// Why an MCP resource name is refused.
public struct ResourceNameError: Error, CustomStringConvertible, Sendable {
    public var name: String
    public var description: String {
        "resource name '\(name)' is not of the form 'namespace/name' (both parts non-empty, one '/')"
    }
}

extension ConfigKey {
    /// Parses an MCP resource name, which must be `namespace/name`.
    public init(kind: ConfigKind, resourceName: String) throws(ResourceNameError) {
        let parts = resourceName.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ResourceNameError(name: resourceName)
        }
        self.init(kind: kind, namespace: String(parts[0]), name: String(parts[1]))
    }
}

/// One Istio config resource as held by a snapshot: its body plus the metadata MCP carries.
public struct ConfigResource: Sendable, Equatable {
    public var key: ConfigKey
    /// The producer's opaque per-resource version (may be empty).
    public var version: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var createTime: Date?
    public var spec: ConfigSpec
    /// Which configured source delivered it (for conflicts and error messages).
    public var origin: String
    /// Where in the source it came from (`file: document N (line L)`), for error messages; not content.
    public var sourceLocation: String?
    /// A hash of everything that affects translation: body, labels and annotations.
    public let contentHash: UInt64

    public init(
        key: ConfigKey, spec: ConfigSpec, version: String = "", labels: [String: String] = [:],
        annotations: [String: String] = [:], createTime: Date? = nil, origin: String = ""
    ) {
        precondition(key.kind == spec.kind, "\(key) carries a \(spec.kind) body")
        self.key = key
        self.spec = spec
        self.version = version
        self.labels = labels
        self.annotations = annotations
        self.createTime = createTime
        self.origin = origin
        var hasher = FNV1a()
        hasher.combine(spec.serializedBytes())
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { hasher.combine("l\(k)=\(v)") }
        for (k, v) in annotations.sorted(by: { $0.key < $1.key }) { hasher.combine("a\(k)=\(v)") }
        self.contentHash = hasher.value
    }

    /// Same content for translation purposes (the producer's version and origin do not count).
    public func hasSameContent(as other: ConfigResource) -> Bool {
        contentHash == other.contentHash && spec == other.spec && labels == other.labels && annotations == other.annotations
    }
}

/// 64-bit FNV-1a, a stable content hash (Swift's `Hasher` is seeded per process).
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        // Contiguous bytes (Data, arrays, UTF-8 strings) hash from one buffer; same result.
        if let done: Void = bytes.withContiguousStorageIfAvailable({ combine(buffer: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
    }

    private mutating func combine(buffer: UnsafeRawBufferPointer) {
        var hash = value
        for byte in buffer {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        value = hash
    }

    public mutating func combine(_ string: String) {
        combine(string.utf8)
        value &*= 0x0000_0100_0000_01b3  // the 0 terminator: xor with 0, then multiply
    }
}
