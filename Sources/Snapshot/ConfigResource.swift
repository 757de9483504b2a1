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
///
/// The fields live in one shared, immutable box: a resource is copied at every stage (decoded,
/// cached by the MCP sink, held by the aggregator, the snapshot and the mesh model), and copying
/// the box is one reference count where copying the fields was a couple of hundred bytes and a
/// dozen. Resources that share a box are the same resource, known without comparing content.
public struct ConfigResource: Sendable, Equatable {
    private struct Fields {
        var key: ConfigKey
        var version: String
        var labels: [String: String]
        var annotations: [String: String]
        var createTime: Date?
        var spec: ConfigSpec
        var origin: String
        var sourceLocation: String?
        /// Of `spec`, `labels` and `annotations`; their setters recompute it.
        var contentHash: UInt64
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box
    private var fields: Fields { box.fields }

    /// A new box with one field replaced (the shared one is never written); `rehash` for the fields
    /// the content hash covers.
    private mutating func set<Value>(_ field: WritableKeyPath<Fields, Value>, _ value: Value, rehash: Bool = false) {
        var copy = box.fields
        copy[keyPath: field] = value
        if rehash { copy.contentHash = Self.contentHash(spec: copy.spec, labels: copy.labels, annotations: copy.annotations) }
        box = Box(copy)
    }

    private static func contentHash(spec: ConfigSpec, labels: [String: String], annotations: [String: String]) -> UInt64 {
        var hasher = FNV1a()
        hasher.combine(spec.serializedBytes())
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { hasher.combine("l\(k)=\(v)") }
        for (k, v) in annotations.sorted(by: { $0.key < $1.key }) { hasher.combine("a\(k)=\(v)") }
        return hasher.value
    }

    public var key: ConfigKey {
        get { fields.key }
        set { set(\.key, newValue) }
    }
    /// The producer's opaque per-resource version (may be empty).
    public var version: String {
        get { fields.version }
        set { set(\.version, newValue) }
    }
    public var labels: [String: String] {
        get { fields.labels }
        set { set(\.labels, newValue, rehash: true) }
    }
    public var annotations: [String: String] {
        get { fields.annotations }
        set { set(\.annotations, newValue, rehash: true) }
    }
    public var createTime: Date? {
        get { fields.createTime }
        set { set(\.createTime, newValue) }
    }
    public var spec: ConfigSpec {
        get { fields.spec }
        set { set(\.spec, newValue, rehash: true) }
    }
    /// Which configured source delivered it (for conflicts and error messages).
    public var origin: String {
        get { fields.origin }
        set { set(\.origin, newValue) }
    }
    /// Where in the source it came from (`file: document N (line L)`), for error messages; not content.
    public var sourceLocation: String? {
        get { fields.sourceLocation }
        set { set(\.sourceLocation, newValue) }
    }
    /// A hash of everything that affects translation: body, labels and annotations.
    public var contentHash: UInt64 { fields.contentHash }

    public init(
        key: ConfigKey, spec: ConfigSpec, version: String = "", labels: [String: String] = [:],
        annotations: [String: String] = [:], createTime: Date? = nil, origin: String = ""
    ) {
        precondition(key.kind == spec.kind, "\(key) carries a \(spec.kind) body")
        box = Box(Fields(key: key, version: version, labels: labels, annotations: annotations, createTime: createTime,
                         spec: spec, origin: origin, sourceLocation: nil,
                         contentHash: Self.contentHash(spec: spec, labels: labels, annotations: annotations)))
    }

    public static func == (a: ConfigResource, b: ConfigResource) -> Bool {
        if a.box === b.box { return true }
        return a.key == b.key && a.version == b.version && a.labels == b.labels && a.annotations == b.annotations
            && a.createTime == b.createTime && a.spec == b.spec && a.origin == b.origin && a.sourceLocation == b.sourceLocation
            && a.contentHash == b.contentHash
    }

    /// Same content for translation purposes (the producer's version and origin do not count).
    public func hasSameContent(as other: ConfigResource) -> Bool {
        if box === other.box { return true }
        return contentHash == other.contentHash && spec == other.spec && labels == other.labels && annotations == other.annotations
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
