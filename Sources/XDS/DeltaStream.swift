import EnvoyAPI
import Foundation
import SwiftProtobuf

public typealias DeltaDiscoveryRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
public typealias DeltaDiscoveryResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

/// The state of one delta (incremental) stream. Pure, like ``SotWStream``. Rules:
/// - subscription changes always apply, even from a request with a stale nonce;
/// - only changed resources are sent; `removed_resources` lists what the client has that no
///   longer exists (or that it newly subscribed to and does not exist);
/// - on reconnect, `initial_resource_versions` says what the client has: equal versions are not
///   resent, names that no longer exist are removed;
/// - a NACK is recorded; the rejected versions are not sent again;
/// - a changed EDS cluster is followed by its endpoints (clusters warm only on a fresh EDS answer).
public struct DeltaStream: Sendable {
    public struct TypeState: Sendable {
        public var names: Set<String> = []
        public var wildcard = false
        public var subscribed = false
        /// What the client holds (or was last sent): name → version.
        public var known: [String: String] = [:]
        public var sentNonce: String?
        public var ackedNonce: String?
        public var nack: String?
    }

    public private(set) var types: [XDSType: TypeState] = [:]
    public private(set) var events: [SotWStream.Event] = []
    private var nonceCounter: UInt64 = 0
    private var config = EncodedConfig()

    public init() {}

    public func state(_ type: XDSType) -> TypeState? { types[type] }

    /// Handles one request; returns the responses to send.
    public mutating func handle(_ request: DeltaDiscoveryRequest, config: EncodedConfig) -> [DeltaDiscoveryResponse] {
        self.config = config
        events.removeAll()
        guard let type = XDSType(rawValue: request.typeURL) else {
            events.append(.unknownType(request.typeURL))
            return []
        }
        var state = types[type] ?? TypeState()
        let first = !state.subscribed
        state.subscribed = true
        if first {
            state.known = request.initialResourceVersions
            if request.resourceNamesSubscribe.isEmpty, request.resourceNamesUnsubscribe.isEmpty { state.wildcard = true }
        }
        var newlySubscribed: Set<String> = []
        for name in request.resourceNamesSubscribe {
            if name == "*" {
                state.wildcard = true
            } else if state.names.insert(name).inserted || !first {
                newlySubscribed.insert(name)
            }
        }
        if first { newlySubscribed.formUnion(state.names) }
        for name in request.resourceNamesUnsubscribe {
            if name == "*" {
                state.wildcard = false
            } else {
                state.names.remove(name)
                newlySubscribed.remove(name)
            }
        }
        if !state.wildcard {
            // The client drops what it no longer subscribes to.
            for name in state.known.keys where !state.names.contains(name) { state.known.removeValue(forKey: name) }
        }
        let nonce = request.responseNonce
        if !nonce.isEmpty {
            if nonce != state.sentNonce {
                events.append(.stale(type))
            } else if request.hasErrorDetail {
                state.nack = request.errorDetail.message
                events.append(.nack(type, nonce: nonce, message: request.errorDetail.message))
            } else {
                state.ackedNonce = nonce
                state.nack = nil
                events.append(.ack(type, nonce: nonce))
            }
        }
        types[type] = state
        // Answer what changed or was newly asked for. A reconnecting client's initial versions count
        // as what it has, so equal versions are not resent.
        let force = first ? newlySubscribed.filter { name in request.initialResourceVersions[name] == nil } : newlySubscribed
        guard let response = response(for: type, force: force, reportMissing: newlySubscribed) else { return [] }
        return [response]
    }

    /// A new config: the changes to push, in CDS, EDS, LDS, RDS order.
    public mutating func push(config: EncodedConfig) -> [DeltaDiscoveryResponse] {
        self.config = config
        var out: [DeltaDiscoveryResponse] = []
        var changedEDSClusters: Set<String> = []
        for type in XDSType.allCases {
            guard types[type]?.subscribed == true else { continue }
            let force = type == .endpoint ? changedEDSClusters : []
            if let response = response(for: type, force: force, reportMissing: []) {
                if type == .cluster { changedEDSClusters = Set(response.resources.map(\.name)).intersection(config.edsClusterNames) }
                out.append(response)
            }
        }
        return out
    }

    /// The names in scope for a type: all (wildcard) or the subscribed ones.
    private func inScope(_ type: XDSType, _ state: TypeState) -> [String: EncodedResource] {
        let all = config[type]
        if state.wildcard { return all }
        return all.filter { state.names.contains($0.key) }
    }

    private mutating func response(for type: XDSType, force: Set<String>, reportMissing: Set<String>) -> DeltaDiscoveryResponse? {
        guard var state = types[type] else { return nil }
        let scope = inScope(type, state)
        var resources: [Envoy_Service_Discovery_V3_Resource] = []
        for (name, resource) in scope.sorted(by: { $0.key < $1.key }) where state.known[name] != resource.version || force.contains(name) {
            var wrapped = Envoy_Service_Discovery_V3_Resource()
            wrapped.name = name
            wrapped.version = resource.version
            wrapped.resource = resource.any
            resources.append(wrapped)
            state.known[name] = resource.version
        }
        var removed = state.known.keys.filter { scope[$0] == nil }.sorted()
        for name in removed { state.known.removeValue(forKey: name) }
        removed += reportMissing.filter { scope[$0] == nil && !removed.contains($0) }.sorted()
        guard !resources.isEmpty || !removed.isEmpty else {
            types[type] = state
            return nil
        }
        nonceCounter += 1
        var response = DeltaDiscoveryResponse()
        response.typeURL = type.typeURL
        response.nonce = String(nonceCounter)
        response.systemVersionInfo = EncodedConfig.version(of: Array(scope.values))
        response.resources = resources
        response.removedResources = removed
        state.sentNonce = response.nonce
        types[type] = state
        return response
    }
}
