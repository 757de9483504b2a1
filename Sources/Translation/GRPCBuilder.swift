import EnvoyAPI
import IstioAPI
import Mesh
import Snapshot
import SwiftProtobuf

/// Config for proxyless gRPC clients (`GENERATOR=grpc` node metadata).
///
/// A gRPC client dials `xds:///<host>:<port>` and subscribes to exactly that listener name. Every
/// service port gets an API listener named `<host>:<port>`, and one per short name the client may
/// dial instead (``dialNames(for:proxy:)``), whose connection manager takes routes over RDS
/// (`outbound|<port>||<host>`); clusters are EDS only (gRPC does not resolve DNS through xDS
/// clusters), without Envoy-only settings gRPC would reject. An xDS-enabled gRPC server asks for
/// its own listener by name (``inboundListener(named:mutualTLS:)``).
public enum GRPCBuilder {
    public static func config(for proxy: Proxy, in model: MeshModel) -> ProxyConfig {
        var config = ProxyConfig()
        let services = model.services(visibleTo: proxy.namespace)
        for service in services {
            let rule = model.destinationRule(host: service.hostname, proxyNamespace: proxy.namespace, serviceNamespace: service.namespace)
            for port in service.ports {
                let routeName = Names.outboundCluster(port: port.number, host: service.hostname)
                for name in dialNames(for: service.hostname, proxy: proxy) {
                    config.listeners.append(apiListener(name: "\(name):\(port.number)", port: port.number, routeName: routeName))
                }
                config.routes.append(routeConfiguration(name: routeName, service: service, port: port, proxy: proxy, in: model))
                for subset in [""] + (rule?.subsets ?? []).map(\.name) {
                    var cluster = cluster(name: Names.outboundCluster(port: port.number, subset: subset, host: service.hostname))
                    if let tls = rule?.trafficPolicy(port: port.number, subset: subset).tls, tls.mode == .istioMutual {
                        cluster.transportSocket = istioMutualSocket(tls, service: service)
                    }
                    config.clusters.append(cluster)
                }
            }
        }
        config.endpoints = config.clusters.map { EndpointBuilder.loadAssignment(clusterName: $0.name, in: model, proxy: proxy) }
        config.inboundMutualTLS = model.inboundMutualTLS(for: proxy)
        return config
    }

    /// The host names a client may dial for a service (Istio §7.1): the FQDN, and for a service in
    /// the DNS domain of the client's node id (`<namespace>.svc.<cluster domain>`) the short forms
    /// `name`, `name.<namespace>` and `name.<namespace>.svc` that expand to it. A client without a
    /// DNS domain gets the FQDN only.
    public static func dialNames(for hostname: String, proxy: Proxy) -> [String] {
        let domain = proxy.dnsDomain
        guard !domain.isEmpty, hostname.hasSuffix("." + domain) else { return [hostname] }
        let short = String(hostname.dropLast(domain.count + 1))
        var names = [hostname]
        if !short.utf8.contains(UInt8(ascii: ".")) { names.append(short) }
        for suffix in [proxy.namespace, proxy.namespace + ".svc"] where domain.hasPrefix(suffix + ".") {
            names.append("\(short).\(suffix)")
        }
        return names
    }

    /// An API listener: an HTTP connection manager (fault, router) with RDS over ADS.
    static func apiListener(name: String, port: UInt32, routeName: String) -> Listener {
        var manager = HTTPConnectionManager()
        manager.statPrefix = name
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = .aggregated
        rds.routeConfigName = routeName
        manager.rds = rds
        manager.httpFilters = [
            ListenerBuilder.httpFilter("envoy.filters.http.fault", Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()),
            ListenerBuilder.httpFilter("envoy.filters.http.router", Envoy_Extensions_Filters_Http_Router_V3_Router()),
        ]
        var listener = Listener()
        listener.name = name
        listener.address = .socket("0.0.0.0", port: port)
        var api = Envoy_Config_Listener_V3_ApiListener()
        api.apiListener = Packing.any(manager)
        listener.apiListener = api
        return listener
    }

    /// One virtual host for the service (`host` and `host:port`), with the routes of the
    /// VirtualServices that apply to the mesh for it, else a default route to the service.
    static func routeConfiguration(name: String, service: Service, port: Service.Port, proxy: Proxy, in model: MeshModel) -> RouteConfiguration {
        let scope = RouteScope(model: model, proxyNamespace: proxy.namespace, port: port.number)
        var routes: [Route] = []
        for resource in model.virtualServices(visibleTo: proxy.namespace) {
            guard case .virtualService(let virtualService) = resource.spec else { continue }
            let gateways = virtualService.gateways.map { resolveGatewayReference($0, namespace: resource.key.namespace) }
            guard gateways.isEmpty || gateways.contains("mesh") else { continue }
            let hosts = virtualService.hosts.map { Names.fullyQualified($0, namespace: resource.key.namespace) }
            guard hosts.contains(where: { HostMatch.overlaps($0, service.hostname) }) else { continue }
            routes += RouteBuilder.httpRoutes(for: virtualService, resource: resource, gateway: "mesh", scope: scope).map(forGRPC)
        }
        if routes.isEmpty || !routes.contains(where: RouteBuilder.isCatchAll) {
            var fallback = Route()
            fallback.name = "default"
            fallback.match.prefix = "/"
            var action = RouteAction()
            action.cluster = name
            fallback.route = action
            routes.append(fallback)
        }
        var host = VirtualHost()
        host.name = "\(service.hostname):\(port.number)"
        // gRPC picks the virtual host by the name it dialled, so every dial name is a domain.
        host.domains = dialNames(for: service.hostname, proxy: proxy).flatMap { [$0, "\($0):\(port.number)"] }
        host.routes = routes
        var configuration = RouteConfiguration()
        configuration.name = name
        configuration.virtualHosts = [host]
        return configuration
    }

    /// What gRPC understands of a route: the timeout becomes `max_stream_duration`, and Envoy's
    /// retry conditions (connect-failure, …) do not apply to gRPC, so the retry policy goes.
    static func forGRPC(_ route: Route) -> Route {
        var route = route
        guard case .route(var action)? = route.action else { return route }
        if action.hasTimeout {
            var duration = Envoy_Config_Route_V3_RouteAction.MaxStreamDuration()
            duration.maxStreamDuration = action.timeout
            action.maxStreamDuration = duration
            action.clearTimeout()
        }
        action.clearRetryPolicy()
        action.hashPolicy = []
        route.route = action
        return route
    }

    /// An EDS cluster over ADS, round robin (gRPC's default; it NACKs policies it lacks).
    static func cluster(name: String) -> Cluster {
        var cluster = Cluster()
        cluster.name = name
        cluster.type = .eds
        var eds = Cluster.EdsClusterConfig()
        eds.edsConfig = .aggregated
        eds.serviceName = name
        cluster.edsClusterConfig = eds
        return cluster
    }
}
