import IstioAPI
import EnvoyAPI
import Mesh
import SwiftProtobuf

/// Builds outbound clusters: `outbound|port||host` per service port, one more per DestinationRule subset.
public enum ClusterBuilder {
    /// Istio's mesh default `connectTimeout`.
    public static let defaultConnectTimeout = Google_Protobuf_Duration(seconds: 10)
    /// Istio's mesh default `dnsRefreshRate` (Envoy's own default is 5 s).
    public static let defaultDNSRefreshRate = Google_Protobuf_Duration(seconds: 60)

    /// Every cluster a proxy in `proxy.namespace` sees, plus `BlackHoleCluster`, sorted by name.
    /// An ISTIO_MUTUAL cluster goes only to a proxy that names its certificate files.
    public static func clusters(for proxy: Proxy, in model: MeshModel) -> [Cluster] {
        var clusters: [Cluster] = [blackHole()]
        let certificates = proxy.workloadCertificates
        for service in model.services(visibleTo: proxy.namespace) {
            let rule = model.destinationRule(host: service.hostname, proxyNamespace: proxy.namespace, serviceNamespace: service.namespace)
            for port in service.ports {
                for subset in [nil] + (rule?.subsets ?? []).map(Optional.some) {
                    let policy = rule?.trafficPolicy(port: port.number, subset: subset?.name ?? "")
                    if policy?.tls.mode == .istioMutual, certificates == nil { continue }
                    guard let cluster = cluster(service: service, port: port, subset: subset, policy: policy, certificates: certificates) else {
                        // A DNS service without endpoints: no cluster, and none for its subsets.
                        if subset == nil { break } else { continue }
                    }
                    clusters.append(cluster)
                }
            }
        }
        var seen = Set<String>()
        return clusters.filter { seen.insert($0.name).inserted }.sorted { $0.name < $1.name }
    }

    /// The cluster of one service port (and subset) under its effective DestinationRule policy.
    /// A DNS service with no endpoints has none.
    public static func cluster(service: Service, port: Service.Port, subset: Istio_Networking_V1alpha3_Subset?,
                               policy: TrafficPolicy? = nil, certificates: Proxy.WorkloadCertificates? = nil) -> Cluster? {
        var cluster = Cluster()
        cluster.name = Names.outboundCluster(port: port.number, subset: subset?.name ?? "", host: service.hostname)
        cluster.connectTimeout = defaultConnectTimeout
        cluster.lbPolicy = .leastRequest
        cluster.commonLbConfig = Cluster.CommonLbConfig()
        switch service.resolution {
        case .staticEndpoints, .passthrough:
            cluster.type = .eds
            var eds = Cluster.EdsClusterConfig()
            eds.edsConfig = .aggregated
            eds.serviceName = cluster.name
            cluster.edsClusterConfig = eds
        case .dns, .dnsRoundRobin:
            var endpoints = EndpointBuilder.selected(service.endpoints, subset: subset)
            // DNS_ROUND_ROBIN (LOGICAL_DNS semantics) uses one endpoint: the first.
            if service.resolution == .dnsRoundRobin { endpoints = Array(endpoints.prefix(1)) }
            guard !endpoints.isEmpty else { return nil }
            var dns = Envoy_Extensions_Clusters_Dns_V3_DnsCluster()
            dns.allAddressesInSingleEndpoint = service.resolution == .dnsRoundRobin
            dns.respectDnsTtl = true
            dns.dnsRefreshRate = defaultDNSRefreshRate
            dns.dnsLookupFamily = .v4Only
            var type = Envoy_Config_Cluster_V3_Cluster.CustomClusterType()
            type.name = "envoy.clusters.dns"
            type.typedConfig = Packing.any(dns)
            cluster.clusterType = type
            cluster.loadAssignment = EndpointBuilder.loadAssignment(clusterName: cluster.name, endpoints: endpoints, port: port)
        }
        apply(policy ?? TrafficPolicy(), service: service, port: port, subset: subset?.name ?? "", certificates: certificates, to: &cluster)
        return cluster
    }

    /// `BlackHoleCluster`: a static cluster with no endpoints.
    public static func blackHole() -> Cluster {
        var cluster = Cluster()
        cluster.name = Names.blackHoleCluster
        cluster.type = .static
        cluster.connectTimeout = defaultConnectTimeout
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = Names.blackHoleCluster
        cluster.loadAssignment = assignment
        return cluster
    }

    /// Whether Envoy fetches this cluster's endpoints over EDS.
    public static func usesEDS(_ cluster: Cluster) -> Bool { cluster.type == .eds }
}
