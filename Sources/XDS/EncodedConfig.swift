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
    public var resources: [XDSType: [String: EncodedResource]] = [:]

    public init(_ config: ProxyConfig) {
        resources[.cluster] = Self.index(config.clusters.map { EncodedResource(name: $0.name, message: $0) })
        resources[.endpoint] = Self.index(config.endpoints.map { EncodedResource(name: $0.clusterName, message: $0) })
        resources[.listener] = Self.index(config.listeners.map { EncodedResource(name: $0.name, message: $0) })
        resources[.route] = Self.index(config.routes.map { EncodedResource(name: $0.name, message: $0) })
    }

    public init() {}

    static func index(_ list: [EncodedResource]) -> [String: EncodedResource] {
        Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public subscript(type: XDSType) -> [String: EncodedResource] { resources[type] ?? [:] }

    /// Names of clusters whose endpoints come over EDS.
    public var edsClusterNames: Set<String> { Set(self[.endpoint].keys) }

    /// A version string for a set of resources: stable for the same content.
    public static func version(of resources: [EncodedResource]) -> String {
        var hasher = FNV1a()
        for resource in resources.sorted(by: { $0.name < $1.name }) {
            hasher.combine(resource.name)
            hasher.combine(resource.version)
        }
        return String(hasher.value, radix: 16)
    }
}
