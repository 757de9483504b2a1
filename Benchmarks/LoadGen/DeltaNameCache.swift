import EnvoyAPI
import Foundation
import GRPCCore
import SwiftProtobuf
import Synchronization

typealias DeltaDiscoveryRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
typealias DeltaDiscoveryResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

/// What a delta response leads to: EDS clusters a CDS response adds, route configuration names of
/// an LDS response, route configurations of an RDS response that use VHDS; and the names it removes.
/// Decoded once per distinct response: proxies with the same history receive the same bytes.
final class DeltaNameCache: Sendable {
    struct Names: Sendable {
        var added: [String] = []
        var removed: [String] = []
    }

    private let cache = Mutex<[String: Names]>([:])

    func names(for response: RawResponse) throws -> Names {
        let key = "\(response.typeURL)|\(response.version)|\(response.nonce)|\(response.bytes.count)"
        if let names = cache.withLock({ $0[key] }) { return names }
        let decoded = try DeltaDiscoveryResponse(serializedBytes: response.bytes)
        var names = Names(removed: decoded.removedResources)
        for resource in decoded.resources where resource.hasResource {
            let any = resource.resource
            if response.typeURL == TypeURL.cluster {
                let cluster = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: any)
                if cluster.type == .eds {
                    names.added.append(cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName)
                }
            } else if response.typeURL == TypeURL.listener {
                let listener = try Envoy_Config_Listener_V3_Listener(unpackingAny: any)
                for filter in listener.filterChains.flatMap(\.filters) where filter.typedConfig.typeURL.hasSuffix("HttpConnectionManager") {
                    let manager = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig)
                    if case .rds(let rds)? = manager.routeSpecifier { names.added.append(rds.routeConfigName) }
                }
            } else if response.typeURL == TypeURL.route {
                let route = try Envoy_Config_Route_V3_RouteConfiguration(unpackingAny: any)
                if route.hasVhds { names.added.append(route.name) }
            }
        }
        names.added = Array(Set(names.added)).sorted()
        cache.withLock { $0[key] = names }
        return names
    }
}
