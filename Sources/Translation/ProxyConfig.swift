import IstioAPI
import Mesh
import EnvoyAPI
import SwiftProtobuf

public typealias Cluster = Envoy_Config_Cluster_V3_Cluster
public typealias ClusterLoadAssignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment
public typealias Listener = Envoy_Config_Listener_V3_Listener
public typealias RouteConfiguration = Envoy_Config_Route_V3_RouteConfiguration

/// The Envoy resources one proxy should have.
public struct ProxyConfig: Sendable, Equatable {
    public var clusters: [Cluster] = []
    public var endpoints: [ClusterLoadAssignment] = []
    public var listeners: [Listener] = []
    public var routes: [RouteConfiguration] = []
    /// What translation could not do faithfully (not sent to the proxy).
    public var diagnostics: [Diagnostic] = []
    /// Proxyless gRPC only: the workload's inbound mutual TLS, from which the listener an
    /// xDS-enabled server requests by name is built on demand (``GRPCBuilder/inboundListener(named:mutualTLS:)``).
    public var inboundMutualTLS: InboundMutualTLS?

    public init(clusters: [Cluster] = [], endpoints: [ClusterLoadAssignment] = [], listeners: [Listener] = [],
                routes: [RouteConfiguration] = [], diagnostics: [Diagnostic] = []) {
        self.clusters = clusters
        self.endpoints = endpoints
        self.listeners = listeners
        self.routes = routes
        self.diagnostics = diagnostics
    }
}

/// Packing helpers: deterministic bytes, `type.googleapis.com/` type URLs.
public enum Packing {
    public static let typePrefix = "type.googleapis.com/"

    public static func deterministicBytes(_ message: any SwiftProtobuf.Message) -> [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return (try? message.serializedBytes(options: options)) ?? []
    }

    public static func typeURL(of message: any SwiftProtobuf.Message) -> String {
        typePrefix + type(of: message).protoMessageName
    }

    public static func any(_ message: any SwiftProtobuf.Message) -> Google_Protobuf_Any {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        var any = Google_Protobuf_Any()
        any.typeURL = typeURL(of: message)
        any.value = (try? message.serializedBytes(options: options)) ?? Data()
        return any
    }
}

import struct Foundation.Data

extension Google_Protobuf_Duration {
    /// A duration of whole milliseconds.
    public init(milliseconds: Int64) {
        self.init(seconds: milliseconds / 1000, nanos: Int32((milliseconds % 1000) * 1_000_000))
    }
}

extension Google_Protobuf_UInt32Value {
    public init(_ value: UInt32) {
        self.init()
        self.value = value
    }
}

extension Google_Protobuf_BoolValue {
    public init(_ value: Bool) {
        self.init()
        self.value = value
    }
}

extension Envoy_Config_Core_V3_ConfigSource {
    /// `{ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}` as Istio emits.
    public static var aggregated: Envoy_Config_Core_V3_ConfigSource {
        var source = Envoy_Config_Core_V3_ConfigSource()
        source.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        source.initialFetchTimeout = Google_Protobuf_Duration(seconds: 0)
        source.resourceApiVersion = .v3
        return source
    }
}

extension Envoy_Config_Core_V3_Address {
    public static func socket(_ address: String, port: UInt32) -> Envoy_Config_Core_V3_Address {
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = address
        socket.portValue = port
        var result = Envoy_Config_Core_V3_Address()
        result.socketAddress = socket
        return result
    }
}
