import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias LocalityEndpoints = Envoy_Config_Endpoint_V3_LocalityLbEndpoints
typealias LocalitySetting = Istio_Networking_V1alpha3_LocalityLoadBalancerSetting

/// Locality load balancing in the ClusterLoadAssignment (Istio §6.3), relative to the proxy's locality.
extension EndpointBuilder {
    /// `distribute` rewrites locality weights; otherwise, when the policy has outlier detection,
    /// failover priorities order localities by closeness. Needs the proxy's locality; an explicitly
    /// disabled setting or an unknown locality leaves the assignment as it is.
    static func applyLocalityPolicy(_ policy: TrafficPolicy, proxyLocality: String, to assignment: ClusterLoadAssignment) -> ClusterLoadAssignment {
        let setting = policy.loadBalancer.localityLbSetting
        guard !proxyLocality.isEmpty, !(setting.hasEnabled && !setting.enabled.value) else { return assignment }
        var result = assignment
        if let rule = setting.distribute.first(where: { matches(proxyLocality, pattern: $0.from) }) {
            result.endpoints = distribute(result.endpoints, to: rule.to)
        } else if policy.hasOutlierDetection {
            result.endpoints = prioritised(result.endpoints, proxyLocality: proxyLocality)
        }
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

    /// Priority 0 for the proxy's own subzone, 1 same zone, 2 same region, 3 elsewhere; then
    /// compacted so the used priorities are 0…N.
    static func prioritised(_ groups: [LocalityEndpoints], proxyLocality: String) -> [LocalityEndpoints] {
        let proxy = locality(proxyLocality)
        let raw = groups.map { group -> UInt32 in
            let endpoint = group.locality
            guard endpoint.region == proxy.region else { return 3 }
            guard endpoint.zone == proxy.zone else { return 2 }
            return endpoint.subZone == proxy.subZone ? 0 : 1
        }
        let compacted = Dictionary(uniqueKeysWithValues: Set(raw).sorted().enumerated().map { ($1, UInt32($0)) })
        return zip(groups, raw).map { group, priority in
            var prioritised = group
            prioritised.priority = compacted[priority]!
            return prioritised
        }
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
