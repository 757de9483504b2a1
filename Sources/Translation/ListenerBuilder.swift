import IstioAPI
import EnvoyAPI
import Mesh
import SwiftProtobuf

typealias HTTPConnectionManager = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager

/// Builds gateway listeners: one `0.0.0.0_<port>` per port with plaintext HTTP servers.
public enum ListenerBuilder {
    public static func gatewayListeners(_ servers: GatewayServers) -> [Listener] {
        servers.ports.map { port in httpListener(port: port, routeName: Names.gatewayHTTPRoute(port: port)) }
    }

    /// A listener on `0.0.0.0:<port>` whose one filter chain is an HTTP connection manager using RDS `routeName`.
    public static func httpListener(port: UInt32, routeName: String) -> Listener {
        var listener = Listener()
        listener.name = Names.listener(port: port)
        listener.address = .socket("0.0.0.0", port: port)
        listener.trafficDirection = .outbound
        var chain = Envoy_Config_Listener_V3_FilterChain()
        var filter = Envoy_Config_Listener_V3_Filter()
        filter.name = "envoy.filters.network.http_connection_manager"
        filter.typedConfig = Packing.any(connectionManager(statPrefix: "outbound_0.0.0.0_\(port)", routeName: routeName))
        chain.filters = [filter]
        listener.filterChains = [chain]
        return listener
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
