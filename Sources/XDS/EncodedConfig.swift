import EnvoyAPI
import Foundation
import Snapshot
import SwiftProtobuf
import Translation

/// One Envoy resource, serialized once and shared by every proxy that receives it.
public struct EncodedResource: Sendable, Equatable {
    public var name: String
    /// The resource packed in an `Any` (deterministic bytes, typed URL).
    public var any: Google_Protobuf_Any
    /// Content hash of the bytes; also the per-resource version in delta xDS.
    public var hash: UInt64

    public init(name: String, message: any SwiftProtobuf.Message) {
        self.name = name
        self.any = Packing.any(message)
        var hasher = FNV1a()
        hasher.combine(any.value)
        self.hash = hasher.value
    }

    public var version: String { String(hash, radix: 16) }
}

/// The encoded resources of one proxy class, per type and name.
public struct EncodedConfig: Sendable {
    public var resources: [XDSType: [String: EncodedResource]] = [:] {
        didSet { summarize() }
    }
    /// Per type, computed once per proxy class: every resource sorted by name, and its version.
    /// Streams whose subscription covers the whole type reuse these instead of sorting and
    /// hashing per proxy.
    public private(set) var sorted: [XDSType: [EncodedResource]] = [:]
    public private(set) var fullVersion: [XDSType: String] = [:]

    public init(_ config: ProxyConfig) {
        resources = [
            .cluster: Self.index(config.clusters.map { EncodedResource(name: $0.name, message: $0) }),
            .endpoint: Self.index(config.endpoints.map { EncodedResource(name: $0.clusterName, message: $0) }),
            .listener: Self.index(config.listeners.map { EncodedResource(name: $0.name, message: $0) }),
            .route: Self.index(config.routes.map { EncodedResource(name: $0.name, message: $0) }),
        ]
        summarize()
    }

    public init() {}

    private mutating func summarize() {
        for (type, byName) in resources {
            let list = byName.values.sorted { $0.name < $1.name }
            sorted[type] = list
            fullVersion[type] = Self.version(ofSorted: list)
        }
    }

    static func index(_ list: [EncodedResource]) -> [String: EncodedResource] {
        Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public subscript(type: XDSType) -> [String: EncodedResource] { resources[type] ?? [:] }

    /// Names of clusters whose endpoints come over EDS.
    public var edsClusterNames: Set<String> { Set(self[.endpoint].keys) }

    /// A version string for a set of resources: stable for the same content.
    public static func version(of resources: [EncodedResource]) -> String {
        version(ofSorted: resources.sorted(by: { $0.name < $1.name }))
    }

    static func version(ofSorted resources: [EncodedResource]) -> String {
        var hasher = FNV1a()
        for resource in resources {
            hasher.combine(resource.name)
            hasher.combine(resource.version)
        }
        return String(hasher.value, radix: 16)
    }
}
