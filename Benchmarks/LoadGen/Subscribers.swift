import EnvoyAPI
import GRPCCore
import SwiftProtobuf

/// What a simulated proxy sends on its ADS stream: its first request, then for each response the
/// requests it answers with. Pure state, no I/O: the same subscriber runs over grpc-swift's client
/// (``adsStream(_:subscriber:index:tracker:)``) and over the HTTP/2 client written on SwiftNIO
/// (``RawADSClient``).
protocol ADSSubscriber: Sendable {
    associatedtype Request: FirstRequest
    /// The ADS method this subscriber speaks.
    static var method: MethodDescriptor { get }
    /// Which router this is (``routerNode(_:)``).
    var index: Int { get }
    /// The requests answering `response`, in the order they are sent (its ACK among them).
    mutating func receive(_ response: RawResponse) throws -> [Request]
    /// Whether every type the proxy subscribes to has been ACKed once.
    var synced: Bool { get }
}

/// A request that can open an ADS stream: both kinds name the node and start with CDS.
protocol FirstRequest: SwiftProtobuf.Message & Sendable {
    var node: Envoy_Config_Core_V3_Node { get set }
    var typeURL: String { get set }
}

extension DiscoveryRequest: FirstRequest {}
extension DeltaDiscoveryRequest: FirstRequest {}

extension ADSSubscriber {
    /// The stream's first request: the node, and CDS (as a wildcard).
    func first() -> Request {
        var first = Request()
        first.node = routerNode(index)
        first.typeURL = TypeURL.cluster
        return first
    }
}

/// A router over state-of-the-world ADS, subscribing like Envoy: CDS (wildcard) → EDS for the EDS
/// clusters → LDS (wildcard) → RDS for the listeners' route names, ACKing every response.
struct SotWSubscriber: ADSSubscriber {
    static var method: MethodDescriptor { Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.StreamAggregatedResources.descriptor }

    let index: Int
    let names: NameCache
    private var subscribed: [String: [String]] = [TypeURL.cluster: []]
    private var lastVersion: [String: String] = [:]
    private var lastNonce: [String: String] = [:]
    private var ldsRequested = false
    private var syncedTypes = Set<String>()

    init(index: Int, names: NameCache) {
        self.index = index
        self.names = names
    }

    var synced: Bool { syncedTypes.count == 4 }

    mutating func receive(_ message: RawResponse) throws -> [DiscoveryRequest] {
        let type = message.typeURL
        lastVersion[type] = message.version
        lastNonce[type] = message.nonce
        var followUps: [(String, [String])] = []
        if type == TypeURL.cluster {
            let eds = try names.names(for: message)
            if subscribed[TypeURL.endpoint] != eds { followUps.append((TypeURL.endpoint, eds)) }
            if eds.isEmpty, !ldsRequested { ldsRequested = true; followUps.append((TypeURL.listener, [])) }
        } else if type == TypeURL.endpoint, !ldsRequested {
            ldsRequested = true
            followUps.append((TypeURL.listener, []))
        } else if type == TypeURL.listener {
            let rds = try names.names(for: message)
            if subscribed[TypeURL.route] != rds { followUps.append((TypeURL.route, rds)) }
        }
        // The ACK, then the follow-up subscriptions.
        var requests = [request(type, names: subscribed[type] ?? [])]
        for (followType, followNames) in followUps { requests.append(request(followType, names: followNames)) }
        syncedTypes.insert(type)
        return requests
    }

    private mutating func request(_ type: String, names: [String]) -> DiscoveryRequest {
        var message = DiscoveryRequest()
        message.typeURL = type
        message.resourceNames = names
        message.versionInfo = lastVersion[type] ?? ""
        message.responseNonce = lastNonce[type] ?? ""
        subscribed[type] = names
        return message
    }
}

/// A router over incremental (delta) ADS, subscribing as Envoy 1.40 does: CDS and LDS as wildcards;
/// EDS and RDS for the names the clusters and listeners add (unsubscribing the clusters removed);
/// VHDS as a wildcard (an empty first request, what Envoy 1.40 sends) once a route configuration
/// uses it. ACKs every response.
struct DeltaSubscriber: ADSSubscriber {
    static var method: MethodDescriptor { Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.DeltaAggregatedResources.descriptor }

    let index: Int
    let names: DeltaNameCache
    private var subscribed: [String: Set<String>] = [:]
    private var started: Set<String> = [TypeURL.cluster]
    private var syncedTypes = Set<String>()
    private var usesVHDS = false

    init(index: Int, names: DeltaNameCache) {
        self.index = index
        self.names = names
    }

    var synced: Bool { syncedTypes.count == (usesVHDS ? 5 : 4) }

    mutating func receive(_ message: RawResponse) throws -> [DeltaDiscoveryRequest] {
        var requests: [DeltaDiscoveryRequest] = []
        let type = message.typeURL
        // Follow-up subscriptions first (Envoy asks for EDS before it ACKs the CDS that named them).
        switch type {
        case TypeURL.cluster:
            let names = try names.names(for: message)
            let eds = (subscribed[TypeURL.endpoint] ?? []).union(names.added).subtracting(names.removed)
            change(TypeURL.endpoint, to: eds, into: &requests)
            if eds.isEmpty { startWildcard(TypeURL.listener, into: &requests) }
        case TypeURL.endpoint:
            startWildcard(TypeURL.listener, into: &requests)
        case TypeURL.listener:
            let names = try names.names(for: message)
            change(TypeURL.route, to: (subscribed[TypeURL.route] ?? []).union(names.added), into: &requests)
        case TypeURL.route:
            if !(try names.names(for: message)).added.isEmpty {
                usesVHDS = true
                startWildcard(TypeURL.virtualHost, into: &requests)
            }
        default: break
        }
        var ack = DeltaDiscoveryRequest()
        ack.typeURL = type
        ack.responseNonce = message.nonce
        requests.append(ack)
        syncedTypes.insert(type)
        return requests
    }

    private mutating func change(_ type: String, to target: Set<String>, into requests: inout [DeltaDiscoveryRequest]) {
        let current = subscribed[type] ?? []
        guard target != current else { return }
        var message = DeltaDiscoveryRequest()
        message.typeURL = type
        message.resourceNamesSubscribe = target.subtracting(current).sorted()
        message.resourceNamesUnsubscribe = current.subtracting(target).sorted()
        subscribed[type] = target
        requests.append(message)
    }

    private mutating func startWildcard(_ type: String, into requests: inout [DeltaDiscoveryRequest]) {
        guard started.insert(type).inserted else { return }
        var message = DeltaDiscoveryRequest()
        message.typeURL = type
        requests.append(message)
    }
}
