import IstioAPI

public typealias TrafficPolicy = Istio_Networking_V1alpha3_TrafficPolicy

extension TrafficPolicy {
    /// The policy for one service port: a matching `portLevelSettings` entry replaces connection
    /// pool, load balancer, outlier detection and TLS wholesale (unset fields fall back to defaults,
    /// not to the top-level values). `portLevelSettings` is cleared in the result.
    public func resolved(forPort port: UInt32) -> TrafficPolicy {
        var result = self
        result.portLevelSettings = []
        if let entry = portLevelSettings.first(where: { $0.port.number == port }) {
            result.replacePortLevelFields(with: entry)
        }
        return result
    }

    /// The policy of a subset on one port (Istio §5.3): the subset's fields override the
    /// destination rule's field by field; a subset port-level entry for the port replaces the four
    /// port-level fields even when they are unset there.
    public func merged(withSubset subset: TrafficPolicy?, port: UInt32) -> TrafficPolicy {
        var merged = resolved(forPort: port)
        guard let subset else { return merged }
        if subset.hasConnectionPool { merged.connectionPool = subset.connectionPool }
        if subset.hasOutlierDetection { merged.outlierDetection = subset.outlierDetection }
        if subset.hasLoadBalancer { merged.loadBalancer = subset.loadBalancer }
        if subset.hasTls { merged.tls = subset.tls }
        if subset.hasTunnel { merged.tunnel = subset.tunnel }
        if subset.hasProxyProtocol { merged.proxyProtocol = subset.proxyProtocol }
        if subset.hasRetryBudget { merged.retryBudget = subset.retryBudget }
        if let entry = subset.portLevelSettings.first(where: { $0.port.number == port }) {
            merged.replacePortLevelFields(with: entry)
        }
        return merged
    }

    mutating func replacePortLevelFields(with entry: Istio_Networking_V1alpha3_TrafficPolicy.PortTrafficPolicy) {
        if entry.hasConnectionPool { connectionPool = entry.connectionPool } else { clearConnectionPool() }
        if entry.hasLoadBalancer { loadBalancer = entry.loadBalancer } else { clearLoadBalancer() }
        if entry.hasOutlierDetection { outlierDetection = entry.outlierDetection } else { clearOutlierDetection() }
        if entry.hasTls { tls = entry.tls } else { clearTls() }
    }
}

extension Istio_Networking_V1alpha3_DestinationRule {
    /// The effective traffic policy for a cluster of this rule: port-level resolved, subset merged.
    public func trafficPolicy(port: UInt32, subset subsetName: String = "") -> TrafficPolicy {
        let subset = subsets.first { $0.name == subsetName && !subsetName.isEmpty }
        return trafficPolicy.merged(withSubset: subset.flatMap { $0.hasTrafficPolicy ? $0.trafficPolicy : nil }, port: port)
    }
}
