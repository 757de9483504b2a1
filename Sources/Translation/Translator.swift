import IstioAPI
import Mesh

/// Pure translation from the mesh model to the Envoy resources of one proxy.
public enum Translator {
    public static func config(for proxy: Proxy, in model: MeshModel) -> ProxyConfig {
        if proxy.isProxylessGRPC { return GRPCBuilder.config(for: proxy, in: model) }
        var config = ProxyConfig()
        config.clusters = ClusterBuilder.clusters(for: proxy, in: model)
        config.endpoints = EndpointBuilder.loadAssignments(for: config.clusters, in: model, proxy: proxy)
        if proxy.kind == .router {
            let servers = GatewayServers(for: proxy, in: model)
            config.listeners = ListenerBuilder.gatewayListeners(servers, for: proxy, in: model)
            config.routes = RouteBuilder.gatewayRoutes(servers, for: proxy, in: model)
        }
        config.diagnostics = Diagnostics.problems(for: proxy, in: model)
        return config
    }
}
