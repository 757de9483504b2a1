import EnvoyAPI
import IstioAPI
import Mesh
import Snapshot

typealias TCPProxy = Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy
typealias RouteDestination = Istio_Networking_V1alpha3_RouteDestination

/// TCP and TLS-passthrough servers → `tcp_proxy` chains from VirtualService `tcp`/`tls` routes.
extension ListenerBuilder {
    /// The chain of a TCP (or TLS-terminated TCP) server: the first VS `tcp` rule that applies.
    static func tcpChain(_ entry: GatewayServers.Entry, scope: RouteScope) -> FilterChain? {
        for (resource, service) in entry.boundVirtualServices(in: scope.model, proxyNamespace: scope.proxyNamespace) {
            for rule in service.tcp where applies(rule.match.map { ($0.port, $0.gateways) }, entry: entry, namespace: resource.key.namespace) {
                guard let proxy = tcpProxy(rule.route, namespace: resource.key.namespace, scope: scope) else { continue }
                var chain = FilterChain()
                chain.filters = [networkFilter("envoy.filters.network.tcp_proxy", proxy)]
                return chain
            }
        }
        return nil
    }

    /// One chain per VS `tls` match on a passthrough server: `server_names` = the match's SNI hosts
    /// narrowed to the server's hosts, then `tcp_proxy` to the route's cluster(s).
    static func passthroughChains(_ entry: GatewayServers.Entry, scope: RouteScope) -> [FilterChain] {
        var chains: [FilterChain] = []
        for (resource, service) in entry.boundVirtualServices(in: scope.model, proxyNamespace: scope.proxyNamespace) {
            let namespace = resource.key.namespace
            for rule in service.tls {
                guard let proxy = tcpProxy(rule.route, namespace: namespace, scope: scope) else { continue }
                for match in rule.match where applies([(match.port, match.gateways)], entry: entry, namespace: namespace) {
                    let names = sniNames(match.sniHosts, entry: entry, namespace: namespace)
                    guard !names.isEmpty else { continue }
                    var chain = FilterChain()
                    chain.filterChainMatch.serverNames = names
                    chain.filters = [networkFilter("envoy.filters.network.tcp_proxy", proxy)]
                    chains.append(chain)
                }
            }
        }
        return chains
    }

    /// SNI hosts that fall under the server's hosts (the narrower name of each overlapping pair).
    static func sniNames(_ sniHosts: [String], entry: GatewayServers.Entry, namespace: String) -> [String] {
        var names = Set<String>()
        for sni in sniHosts {
            for (hostNamespace, host) in entry.hosts where hostNamespace == "*" || hostNamespace == namespace {
                if HostMatch.overlaps(sni, host) { names.insert(HostMatch.narrower(sni, host)) }
            }
        }
        return names.sorted()
    }

    /// A rule applies when it has no match, or one match whose port (if set) is the server port and
    /// whose gateways (if set) include this server's gateway.
    static func applies(_ matches: [(port: UInt32, gateways: [String])], entry: GatewayServers.Entry, namespace: String) -> Bool {
        if matches.isEmpty { return true }
        return matches.contains { match in
            (match.port == 0 || match.port == entry.server.port.number)
                && (match.gateways.isEmpty || match.gateways.map { RouteBuilder.gatewayName($0, namespace: namespace) }.contains(entry.gateway.resourceName))
        }
    }

    /// `tcp_proxy` to one cluster, or weighted clusters (weight-0 destinations dropped as for HTTP).
    static func tcpProxy(_ route: [RouteDestination], namespace: String, scope: RouteScope) -> TCPProxy? {
        let destinations = route.count == 1 ? route : route.filter { $0.weight > 0 }
        let names = destinations.map { RouteBuilder.clusterName($0.destination, namespace: namespace, port: scope.port, in: scope.model) }
        guard let first = names.first else { return nil }
        var proxy = TCPProxy()
        proxy.statPrefix = first
        if names.count == 1 {
            proxy.cluster = first
        } else {
            var weighted = TCPProxy.WeightedCluster()
            weighted.clusters = zip(names, destinations).map { name, destination in
                var cluster = TCPProxy.WeightedCluster.ClusterWeight()
                cluster.name = name
                cluster.weight = UInt32(destination.weight)
                return cluster
            }
            proxy.weightedClusters = weighted
        }
        applyConnectionLimits(of: destinations[0].destination, namespace: namespace, scope: scope, to: &proxy)
        return proxy
    }

    /// The first destination's DestinationRule `tcp.idleTimeout` and `tcp.maxConnectionDuration`
    /// also bound the proxied connection (Istio §5.5).
    static func applyConnectionLimits(of destination: Istio_Networking_V1alpha3_Destination, namespace: String, scope: RouteScope,
                                      to proxy: inout TCPProxy) {
        let host = Names.fullyQualified(destination.host, namespace: namespace)
        guard let service = scope.model.services[host],
              let rule = scope.model.destinationRule(host: host, proxyNamespace: scope.proxyNamespace, serviceNamespace: service.namespace)
        else { return }
        let port = RouteBuilder.clusterPort(destination, service: service, listenerPort: scope.port)
        let tcp = rule.trafficPolicy(port: port, subset: destination.subset).connectionPool.tcp
        if tcp.hasIdleTimeout { proxy.idleTimeout = tcp.idleTimeout }
        if tcp.hasMaxConnectionDuration { proxy.maxDownstreamConnectionDuration = tcp.maxConnectionDuration }
    }
}
