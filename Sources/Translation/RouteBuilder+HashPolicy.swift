import EnvoyAPI
import IstioAPI
import Mesh

typealias HashPolicy = Envoy_Config_Route_V3_RouteAction.HashPolicy

/// DestinationRule consistent hashing → route `hash_policy` (Istio §4.11).
extension RouteBuilder {
    /// The hash policy of a route: that of its destinations when they all agree (a single destination
    /// always does), else none. The key comes from the effective DestinationRule policy of each
    /// destination's cluster (subset port-level > subset > port-level > top-level).
    static func hashPolicy(for destinations: [Istio_Networking_V1alpha3_Destination], namespace: String, scope: RouteScope) -> [HashPolicy] {
        let policies = destinations.map { hashPolicy(for: $0, namespace: namespace, scope: scope) }
        guard let first = policies.first, policies.allSatisfy({ $0 == first }) else { return [] }
        return first
    }

    static func hashPolicy(for destination: Istio_Networking_V1alpha3_Destination, namespace: String, scope: RouteScope) -> [HashPolicy] {
        let host = Names.fullyQualified(destination.host, namespace: namespace)
        guard let service = scope.model.services[host],
              let rule = scope.model.destinationRule(host: host, proxyNamespace: scope.proxyNamespace, serviceNamespace: service.namespace)
        else { return [] }
        let port = clusterPort(destination, service: service, listenerPort: scope.port)
        let policy = rule.trafficPolicy(port: port, subset: destination.subset)
        guard case .consistentHash(let hash)? = policy.loadBalancer.lbPolicy, let key = hash.hashKey else { return [] }
        return [hashPolicy(key)]
    }

    static func hashPolicy(_ key: Istio_Networking_V1alpha3_LoadBalancerSettings.ConsistentHashLB.OneOf_HashKey) -> HashPolicy {
        var policy = HashPolicy()
        switch key {
        case .httpHeaderName(let name):
            policy.header.headerName = name
        case .httpCookie(let cookie):
            var result = HashPolicy.Cookie()
            result.name = cookie.name
            result.path = cookie.path
            if cookie.hasTtl { result.ttl = cookie.ttl }
            result.attributes = cookie.attributes.map { attribute in
                var converted = HashPolicy.CookieAttribute()
                converted.name = attribute.name
                converted.value = attribute.value
                return converted
            }
            policy.cookie = result
        case .useSourceIp:
            policy.connectionProperties.sourceIp = true
        case .httpQueryParameterName(let name):
            policy.queryParameter.name = name
        }
        return policy
    }
}
