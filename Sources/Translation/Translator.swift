import IstioAPI
import Mesh

/// Pure translation from the mesh model to the Envoy resources of one proxy.
public enum Translator {
    /// - Parameter memo: routes of VirtualServices translated before, reused while they hold.
    public static func config(for proxy: Proxy, in model: MeshModel, memo: RouteMemo? = nil) -> ProxyConfig {
        if proxy.isProxylessGRPC { return GRPCBuilder.config(for: proxy, in: model) }
        var config = ProxyConfig()
        config.clusters = ClusterBuilder.clusters(for: proxy, in: model)
        config.endpoints = EndpointBuilder.loadAssignments(for: config.clusters, in: model, proxy: proxy)
        var servers: GatewayServers?
        if proxy.kind == .router {
            let served = GatewayServers(for: proxy, in: model)
            config.listeners = ListenerBuilder.gatewayListeners(served, for: proxy, in: model)
            config.routes = RouteBuilder.gatewayRoutes(served, for: proxy, in: model, memo: memo)
            servers = served
        }
        config.diagnostics = Diagnostics.problems(for: proxy, in: model, servers: servers, memo: memo)
        return config
    }

    /// What a change rebuilds of a config translated before it; everything else stays as it was.
    public struct Update: Sendable {
        /// Rebuilt assignments (the others are unchanged).
        public var endpoints: [ClusterLoadAssignment] = []
        /// Every listener and route configuration, when routing changed; nil when they stay.
        public var listeners: [Listener]?
        public var routes: [RouteConfiguration]?
        /// VirtualService and Gateway problems, when routing changed (DestinationRule problems
        /// cannot have: they stay).
        public var routingDiagnostics: [Diagnostic]?
    }

    /// The part of a proxy's config that `change` reaches, given the EDS clusters it had; nil when
    /// the change needs a full ``config(for:in:)``.
    public static func update(for proxy: Proxy, in model: MeshModel, change: MeshChange, edsClusters: some Sequence<String>,
                              memo: RouteMemo? = nil) -> Update? {
        if change.everything || (change.routing && proxy.isProxylessGRPC) { return nil }
        var update = Update()
        if !change.endpointHosts.isEmpty {
            // Cluster names end in `|<host>`: compare that suffix's bytes, parse only the clusters it reaches.
            let suffixes = change.endpointHosts.map { Array("|\($0)".utf8) }
            update.endpoints = edsClusters.filter { name in
                Names.endsWithAny(name, of: suffixes) && Names.outboundClusterParts(name) != nil
            }.map { EndpointBuilder.loadAssignment(clusterName: $0, in: model, proxy: proxy) }
        }
        if change.routing {
            var servers: GatewayServers?
            if proxy.kind == .router {
                let served = GatewayServers(for: proxy, in: model)
                update.listeners = ListenerBuilder.gatewayListeners(served, for: proxy, in: model)
                update.routes = RouteBuilder.gatewayRoutes(served, for: proxy, in: model, memo: memo)
                servers = served
            }
            update.routingDiagnostics = Diagnostics.routingProblems(for: proxy, in: model, servers: servers, memo: memo)
        }
        return update
    }
}
