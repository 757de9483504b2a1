import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
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

/// One simulated Envoy router over incremental (delta) ADS, subscribing as Envoy 1.40 does: CDS and
/// LDS as wildcards; EDS and RDS for the names the clusters and listeners add (unsubscribing the
/// clusters removed); VHDS as a wildcard (an empty first request, what Envoy 1.40 sends) once a
/// route configuration uses it. ACKs every response.
struct DeltaSimulatedProxy: Sendable {
    var index: Int
    var port: Int
    var tracker: Tracker
    var names: DeltaNameCache

    func run() async {
        await runRetrying(index: index, port: port, tracker: tracker, stream: stream)
    }

    private func stream(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
        var first = DeltaDiscoveryRequest()
        first.node = SimulatedProxy.node(index)
        first.typeURL = TypeURL.cluster
        try await adsStream(client, method: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.DeltaAggregatedResources.descriptor,
                            first: first, tracker: tracker) { messages, send in
            var subscribed: [String: Set<String>] = [:]
            var started: Set<String> = [TypeURL.cluster]
            var syncedTypes = Set<String>()
            var usesVHDS = false
            func change(_ type: String, to target: Set<String>) {
                let current = subscribed[type] ?? []
                guard target != current else { return }
                var message = DeltaDiscoveryRequest()
                message.typeURL = type
                message.resourceNamesSubscribe = target.subtracting(current).sorted()
                message.resourceNamesUnsubscribe = current.subtracting(target).sorted()
                subscribed[type] = target
                send.yield(message)
            }
            func startWildcard(_ type: String) {
                guard started.insert(type).inserted else { return }
                var message = DeltaDiscoveryRequest()
                message.typeURL = type
                send.yield(message)
            }
            for try await message in messages {
                let watched = tracker.receive(message)
                let type = message.typeURL
                // Follow-up subscriptions first (Envoy asks for EDS before it ACKs the CDS that named them).
                switch type {
                case TypeURL.cluster:
                    let names = try names.names(for: message)
                    let eds = (subscribed[TypeURL.endpoint] ?? []).union(names.added).subtracting(names.removed)
                    change(TypeURL.endpoint, to: eds)
                    if eds.isEmpty { startWildcard(TypeURL.listener) }
                case TypeURL.endpoint:
                    startWildcard(TypeURL.listener)
                case TypeURL.listener:
                    let names = try names.names(for: message)
                    change(TypeURL.route, to: (subscribed[TypeURL.route] ?? []).union(names.added))
                case TypeURL.route:
                    if !(try names.names(for: message)).added.isEmpty {
                        usesVHDS = true
                        startWildcard(TypeURL.virtualHost)
                    }
                default: break
                }
                var ack = DeltaDiscoveryRequest()
                ack.typeURL = type
                ack.responseNonce = message.nonce
                send.yield(ack)
                if let watched { tracker.ackedWatched(proxy: index, pattern: watched) }
                syncedTypes.insert(type)
                if syncedTypes.count == (usesVHDS ? 5 : 4) { tracker.synced(proxy: index) }
            }
        }
    }
}
