import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias LocalityEndpoints = Envoy_Config_Endpoint_V3_LocalityLbEndpoints
typealias LocalitySetting = Istio_Networking_V1alpha3_LocalityLoadBalancerSetting

/// Locality load balancing in the ClusterLoadAssignment (Istio §6.3), relative to the proxy's
/// locality and labels.
extension EndpointBuilder {
    /// The assignment of `endpoints` under a traffic policy's `localityLbSetting`:
    /// - `enabled: false`: no priorities, no rewritten weights;
    /// - `distribute` (for the proxy's locality): rewritten locality weights;
    /// - otherwise only with outlier detection (without it Envoy never leaves priority 0):
    ///   `failoverPriority` label tiers (then `failover` regions inside each tier, when also set),
    ///   else priorities by closeness to the proxy's locality, with `failover` choosing the region
    ///   that comes right after the proxy's own.
    static func loadAssignment(clusterName: String, endpoints: [Service.Endpoint], port: Service.Port,
                               policy: TrafficPolicy, proxy: Proxy) -> ClusterLoadAssignment {
        let setting = policy.loadBalancer.localityLbSetting
        var result = loadAssignment(clusterName: clusterName, endpoints: endpoints, port: port)
        if setting.hasEnabled, !setting.enabled.value { return result }
        if !setting.distribute.isEmpty {
            guard !proxy.locality.isEmpty, let rule = setting.distribute.first(where: { matches(proxy.locality, pattern: $0.from) }) else {
                return result
            }
            result.endpoints = distribute(result.endpoints, to: rule.to)
            return result
        }
        guard policy.hasOutlierDetection else { return result }
        if !setting.failoverPriority.isEmpty {
            let proxyLabels = withTopologyLabels(proxy.labels, locality: proxy.locality)
            result = loadAssignment(clusterName: clusterName, endpoints: endpoints, port: port) { endpoint in
                labelTier(of: withTopologyLabels(endpoint.labels, locality: endpoint.locality), proxyLabels: proxyLabels,
                          failoverPriority: setting.failoverPriority)
            }
            guard !setting.failover.isEmpty, !proxy.locality.isEmpty else {
                result.endpoints = compacted(result.endpoints, priorities: result.endpoints.map(\.priority))
                return result
            }
        } else if proxy.locality.isEmpty {
            return result
        }
        result.endpoints = prioritised(result.endpoints, proxyLocality: proxy.locality, failover: setting.failover)
        return result
    }

    /// Each `to` pattern's weight is shared among the localities it matches (first pattern wins),
    /// in proportion to their current weights, rounded up; unmatched localities lose their endpoints.
    static func distribute(_ groups: [LocalityEndpoints], to weights: [String: UInt32]) -> [LocalityEndpoints] {
        var result = groups
        var unmatched = Set(groups.indices)
        for pattern in weights.keys.sorted() {
            let matched = unmatched.filter { matches(name(of: groups[$0].locality), pattern: pattern) }
            unmatched.subtract(matched)
            let total = matched.reduce(0.0) { $0 + Double(max(1, groups[$1].loadBalancingWeight.value)) }
            for index in matched {
                let share = Double(max(1, groups[index].loadBalancingWeight.value)) * Double(weights[pattern]!) / total
                if share > 0 { result[index].loadBalancingWeight = Google_Protobuf_UInt32Value(UInt32(share.rounded(.up))) }
            }
        }
        for index in unmatched { result[index].lbEndpoints = [] }
        return result
    }

    /// Priority 0 for the proxy's own subzone, 1 same zone, 2 same region, 3 elsewhere; with a
    /// `failover` entry whose `from` is the proxy's region, regions other than its `to` drop to 4.
    /// A group's existing priority (a `failoverPriority` tier) ranks first. Then compacted so the
    /// used priorities are 0…N.
    static func prioritised(_ groups: [LocalityEndpoints], proxyLocality: String,
                            failover: [LocalitySetting.Failover] = []) -> [LocalityEndpoints] {
        let proxy = locality(proxyLocality)
        let failoverRegion = failover.first { $0.from == proxy.region }?.to
        let raw = groups.map { group -> UInt32 in
            let endpoint = group.locality
            let closeness: UInt32
            if endpoint.region != proxy.region {
                closeness = failoverRegion == nil || endpoint.region == failoverRegion ? 3 : 4
            } else if endpoint.zone != proxy.zone {
                closeness = 2
            } else {
                closeness = endpoint.subZone == proxy.subZone ? 0 : 1
            }
            return group.priority * 5 + closeness
        }
        return compacted(groups, priorities: raw)
    }

    /// Renumbers `priorities` (one per group) to 0…N, keeping their order.
    static func compacted(_ groups: [LocalityEndpoints], priorities: [UInt32]) -> [LocalityEndpoints] {
        let rank = Dictionary(uniqueKeysWithValues: Set(priorities).sorted().enumerated().map { ($1, UInt32($0)) })
        return zip(groups, priorities).map { group, priority in
            var ranked = group
            ranked.priority = rank[priority]!
            return ranked
        }
    }

    // MARK: - failoverPriority

    /// Labels that stand for locality parts in `failoverPriority`.
    static let topologyLabelKeys = ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"]

    /// `labels` plus the topology labels of a `region/zone/subzone` locality (the locality wins
    /// over an explicit label for the parts it names).
    static func withTopologyLabels(_ labels: [String: String], locality: String) -> [String: String] {
        var result = labels
        for (key, value) in zip(topologyLabelKeys, locality.split(separator: "/", omittingEmptySubsequences: false)) where !value.isEmpty {
            result[key] = String(value)
        }
        return result
    }

    /// The tier of an endpoint for `failoverPriority` labels `[l1 … ln]`: 0 when it matches the proxy
    /// on all n, n − k when it matches on exactly the first k. An entry `key=value` compares the
    /// endpoint's label with `value` instead of the proxy's.
    static func labelTier(of endpointLabels: [String: String], proxyLabels: [String: String], failoverPriority: [String]) -> UInt32 {
        for (index, entry) in failoverPriority.enumerated() {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let wanted = parts.count == 2 ? parts[1] : proxyLabels[parts[0]]
            guard let wanted, endpointLabels[parts[0], default: ""] == wanted else {
                return UInt32(failoverPriority.count - index)
            }
        }
        return 0
    }

    static func name(of locality: Envoy_Config_Core_V3_Locality) -> String {
        [locality.region, locality.zone, locality.subZone].joined(separator: "/")
    }

    /// Istio locality patterns: `region/zone/subzone` with `*` for any remaining part.
    static func matches(_ localityName: String, pattern: String) -> Bool {
        let parts = localityName.split(separator: "/", omittingEmptySubsequences: false)
        for (index, expected) in pattern.split(separator: "/", omittingEmptySubsequences: false).enumerated() {
            if expected == "*" { return true }
            if index >= parts.count || parts[index] != expected { return false }
        }
        return true
    }
}
