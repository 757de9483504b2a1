import IstioAPI
import EnvoyAPI
import Mesh
import SwiftProtobuf

/// Builds ClusterLoadAssignments: endpoints grouped by locality, weights, subset filtering.
public enum EndpointBuilder {
    /// Assignments for every EDS cluster among `clusters`.
    public static func loadAssignments(for clusters: [Cluster], in model: MeshModel, proxy: Proxy) -> [ClusterLoadAssignment] {
        clusters.filter(ClusterBuilder.usesEDS).map { cluster in
            loadAssignment(clusterName: cluster.name, in: model, proxy: proxy)
        }
    }

    /// The assignment of one `outbound|port|subset|host` cluster (only the name when unknown or empty).
    public static func loadAssignment(clusterName: String, in model: MeshModel, proxy: Proxy) -> ClusterLoadAssignment {
        guard let parts = Names.outboundClusterParts(clusterName), let service = model.services[parts.host],
              let port = service.port(number: parts.port), service.resolution == .staticEndpoints else {
            var empty = ClusterLoadAssignment()
            empty.clusterName = clusterName
            return empty
        }
        let rule = model.destinationRule(host: service.hostname, proxyNamespace: proxy.namespace, serviceNamespace: service.namespace)
        var subset: Istio_Networking_V1alpha3_Subset?
        if !parts.subset.isEmpty {
            subset = rule?.subsets.first { $0.name == parts.subset }
            if subset == nil {
                var empty = ClusterLoadAssignment()
                empty.clusterName = clusterName
                return empty
            }
        }
        let endpoints = selected(service.endpoints, subset: subset).filter(\.hasIPAddress)
        guard let policy = rule?.trafficPolicy(port: parts.port, subset: parts.subset) else {
            return loadAssignment(clusterName: clusterName, endpoints: endpoints, port: port)
        }
        return loadAssignment(clusterName: clusterName, endpoints: endpoints, port: port, policy: policy, proxy: proxy)
    }

    /// Endpoints whose labels match the subset's labels (all of them without a subset).
    public static func selected(_ endpoints: [Service.Endpoint], subset: Istio_Networking_V1alpha3_Subset?) -> [Service.Endpoint] {
        guard let subset else { return endpoints }
        return endpoints.filter { $0.labels.matches(selector: subset.labels) }
    }

    /// One `LocalityLbEndpoints` per locality (sorted), each with the sum of its endpoint weights.
    /// Every group carries a `locality`, which proxyless gRPC requires. With `tier`, endpoints of one
    /// locality in different tiers form separate groups whose `priority` is the tier.
    public static func loadAssignment(clusterName: String, endpoints: [Service.Endpoint], port: Service.Port,
                                      tier: (Service.Endpoint) -> UInt32 = { _ in 0 }) -> ClusterLoadAssignment {
        struct GroupKey: Hashable, Comparable {
            var locality: String
            var tier: UInt32
            static func < (lhs: GroupKey, rhs: GroupKey) -> Bool { (lhs.locality, lhs.tier) < (rhs.locality, rhs.tier) }
        }
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = clusterName
        let byGroup = Dictionary(grouping: endpoints) { GroupKey(locality: $0.locality, tier: tier($0)) }
        for key in byGroup.keys.sorted() {
            var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            group.locality = locality(key.locality)
            group.priority = key.tier
            var total: UInt32 = 0
            for endpoint in byGroup[key]! {
                var lbEndpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
                var target = Envoy_Config_Endpoint_V3_Endpoint()
                target.address = .socket(endpoint.address, port: endpoint.port(for: port))
                lbEndpoint.endpoint = target
                lbEndpoint.loadBalancingWeight = Google_Protobuf_UInt32Value(endpoint.weight)
                total += endpoint.weight
                group.lbEndpoints.append(lbEndpoint)
            }
            group.loadBalancingWeight = Google_Protobuf_UInt32Value(total)
            assignment.endpoints.append(group)
        }
        return assignment
    }

    /// `region/zone/subzone` → Locality.
    static func locality(_ name: String) -> Envoy_Config_Core_V3_Locality {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var locality = Envoy_Config_Core_V3_Locality()
        if parts.count > 0 { locality.region = parts[0] }
        if parts.count > 1 { locality.zone = parts[1] }
        if parts.count > 2 { locality.subZone = parts[2] }
        return locality
    }
}
