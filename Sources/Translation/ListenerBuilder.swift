import IstioAPI
import EnvoyAPI
import Mesh
import SwiftProtobuf

typealias HTTPConnectionManager = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager
typealias FilterChain = Envoy_Config_Listener_V3_FilterChain
typealias NetworkFilter = Envoy_Config_Listener_V3_Filter

/// Builds gateway listeners: one `0.0.0.0_<port>` per server port (Istio §2.3).
public enum ListenerBuilder {
    public static func gatewayListeners(_ servers: GatewayServers, for proxy: Proxy, in model: MeshModel) -> [Listener] {
        servers.addresses.compactMap { address in
            listener(address, entries: servers.byAddress[address] ?? [],
                     scope: RouteScope(model: model, proxyNamespace: proxy.namespace, port: address.port))
        }
    }

    /// The listener of one address, or nil when no server there yields a filter chain.
    static func listener(_ address: GatewayServers.Address, entries: [GatewayServers.Entry], scope: RouteScope) -> Listener? {
        guard let first = entries.first else { return nil }
        var chains: [FilterChain]
        switch first.kind {
        case .http:
            chains = [httpChain(statPrefix: statPrefix(address), routeName: address.httpRouteName)]
        case .tcp:
            chains = tcpChain(first, scope: scope).map { [$0] } ?? []
        case .https, .terminatedTCP, .passthrough:
            chains = uniqueMatches(entries.flatMap { sniChains($0, scope: scope) })
        }
        guard !chains.isEmpty else { return nil }
        var listener = base(bind: address.listenerBind, port: address.port)
        listener.filterChains = chains
        if chains.contains(where: { $0.hasFilterChainMatch || $0.hasTransportSocket }) {
            listener.listenerFilters = [tlsInspector()]
        }
        return listener
    }

    /// A listener on `0.0.0.0:<port>` whose one filter chain is an HTTP connection manager using RDS `routeName`.
    public static func httpListener(port: UInt32, routeName: String) -> Listener {
        var listener = base(bind: "0.0.0.0", port: port)
        listener.filterChains = [httpChain(statPrefix: statPrefix(GatewayServers.Address(bind: "", port: port)), routeName: routeName)]
        return listener
    }

    /// Istio's HCM stat prefix: `outbound_<bind>_<port>`.
    static func statPrefix(_ address: GatewayServers.Address) -> String { "outbound_\(address.listenerName)" }

    static func base(bind: String, port: UInt32) -> Listener {
        var listener = Listener()
        listener.name = Names.listener(bind: bind, port: port)
        listener.address = .socket(bind, port: port)
        listener.trafficDirection = .outbound
        return listener
    }

    static func httpChain(statPrefix: String, routeName: String) -> FilterChain {
        var chain = FilterChain()
        chain.filters = [networkFilter("envoy.filters.network.http_connection_manager",
                                       connectionManager(statPrefix: statPrefix, routeName: routeName))]
        return chain
    }

    /// Filter chains of a server told apart by SNI: HTTPS, TLS-terminated TCP, or passthrough.
    static func sniChains(_ entry: GatewayServers.Entry, scope: RouteScope) -> [FilterChain] {
        switch entry.kind {
        case .https:
            guard let context = downstreamTLS(entry.server.tls, alpn: ["h2", "http/1.1"]) else { return [] }
            let prefix = entry.server.name.isEmpty ? statPrefix(entry.address) : entry.server.name
            var chain = httpChain(statPrefix: prefix, routeName: entry.httpsRouteName)
            chain.filterChainMatch.serverNames = entry.serverNames
            chain.transportSocket = ClusterBuilder.transportSocket(context)
            return [chain]
        case .terminatedTCP:
            guard let context = downstreamTLS(entry.server.tls, alpn: []), var chain = tcpChain(entry, scope: scope) else { return [] }
            chain.filterChainMatch.serverNames = entry.serverNames
            chain.transportSocket = ClusterBuilder.transportSocket(context)
            return [chain]
        case .passthrough:
            return passthroughChains(entry, scope: scope)
        case .http, .tcp:
            return []
        }
    }

    /// Envoy refuses two chains with the same match: the first one wins.
    static func uniqueMatches(_ chains: [FilterChain]) -> [FilterChain] {
        var seen = Set<[String]>()
        return chains.filter { seen.insert($0.filterChainMatch.serverNames).inserted }
    }

    static func tlsInspector() -> Envoy_Config_Listener_V3_ListenerFilter {
        var filter = Envoy_Config_Listener_V3_ListenerFilter()
        filter.name = "envoy.filters.listener.tls_inspector"
        filter.typedConfig = Packing.any(Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector())
        return filter
    }

    static func networkFilter(_ name: String, _ config: any SwiftProtobuf.Message) -> NetworkFilter {
        var filter = NetworkFilter()
        filter.name = name
        filter.typedConfig = Packing.any(config)
        return filter
    }

    /// The gateway HTTP connection manager, shaped like Istio's with stock-Envoy filters only.
    static func connectionManager(statPrefix: String, routeName: String) -> HTTPConnectionManager {
        var manager = HTTPConnectionManager()
        manager.statPrefix = statPrefix
        manager.codecType = .auto
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = .aggregated
        rds.routeConfigName = routeName
        manager.rds = rds
        manager.useRemoteAddress = Google_Protobuf_BoolValue(true)
        // Drop any client-sent XFCC; describe the verified client certificate (MUTUAL servers).
        manager.forwardClientCertDetails = .sanitizeSet
        var clientCertificate = HTTPConnectionManager.SetCurrentClientCertDetails()
        clientCertificate.subject = Google_Protobuf_BoolValue(true)
        clientCertificate.dns = true
        clientCertificate.uri = true
        manager.setCurrentClientCertDetails = clientCertificate
        manager.serverName = "istio-envoy"
        manager.normalizePath = Google_Protobuf_BoolValue(true)
        manager.pathWithEscapedSlashesAction = .keepUnchanged
        manager.streamIdleTimeout = Google_Protobuf_Duration(seconds: 0)
        var websocket = HTTPConnectionManager.UpgradeConfig()
        websocket.upgradeType = "websocket"
        manager.upgradeConfigs = [websocket]
        var requestID = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_RequestIDExtension()
        requestID.typedConfig = Packing.any(Envoy_Extensions_RequestId_Uuid_V3_UuidRequestIdConfig())
        manager.requestIDExtension = requestID
        manager.httpFilters = [
            httpFilter("envoy.filters.http.fault", Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()),
            httpFilter("envoy.filters.http.cors", Envoy_Extensions_Filters_Http_Cors_V3_Cors()),
            httpFilter("envoy.filters.http.router", Envoy_Extensions_Filters_Http_Router_V3_Router()),
        ]
        return manager
    }

    static func httpFilter(_ name: String, _ config: any SwiftProtobuf.Message) -> Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter {
        var filter = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
        filter.name = name
        filter.typedConfig = Packing.any(config)
        return filter
    }
}
