import EnvoyAPI
import Foundation
import Mesh
import SwiftProtobuf

public typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
public typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse

/// The state of one state-of-the-world stream: subscriptions, what was sent, what was ACKed.
///
/// Pure: requests and new configs go in, responses to send come out. Rules (xDS protocol):
/// - a request whose nonce is not the latest sent for its type is stale and ignored;
/// - a NACK (`error_detail`) is recorded and the rejected version is not sent again;
/// - an ACK is answered only when its subscription changed;
/// - every CDS response is followed by an EDS response (clusters warm only on a fresh EDS answer);
/// - pushes go in the order CDS, EDS, LDS, RDS;
/// - one pushed response per type in flight: a push skips a type whose last response is not yet
///   ACKed or NACKed, and the answer to it pushes the newest config of that type then (an EDS
///   response owed after a CDS push stays owed). Envoy repeats its whole subscription in every ACK
///   (a router's EDS ACK names every cluster): pushing every generation during endpoint churn
///   queued ACKs the server then had to read, most of them stale, and the last change waited
///   behind them. Per type, because Envoy does not answer an empty response of a type it no longer
///   watches. Requests are always answered (the client asked).
public struct SotWStream: Sendable {
    /// Every proxy keeps one per type: the flags come last, so they share the padding of the
    /// digest's tag rather than each start a word.
    public struct TypeState: Sendable {
        /// Explicit names; empty with `wildcard` = everything.
        public var names: Set<String> = []
        public var sentVersion: String?
        public var sentNonce: String?
        public var ackedVersion: String?
        public var nackedVersion: String?
        public var nack: String?
        /// The config the latest response was built from, and the one the proxy last ACKed:
        /// EDS and RDS pushes carry only what changed since (shared storage, no copy per proxy).
        var sentFrom: SharedConfig?
        var ackedFrom: SharedConfig?
        /// The digest of the encoded names last taken, when they came encoded.
        var namesDigest: NamesDigest?
        public var wildcard = false
        public var subscribed = false
        public var everNamed = false
        /// The response with ``sentNonce`` is not yet ACKed or NACKed.
        public var awaitingAnswer = false
    }

    /// What the caller should know about a handled request.
    public enum Event: Sendable, Equatable {
        /// The response with this nonce was applied.
        case ack(XDSType, nonce: String)
        /// The response with this nonce was rejected.
        case nack(XDSType, nonce: String, message: String)
        case stale(XDSType)
        case unknownType(String)
    }

    public private(set) var types = XDSTypeTable<TypeState>()
    private var nonceCounter: UInt64 = 0
    /// The config being served, boxed once per stream and generation: each type's state refers to
    /// the config it was sent from with one pointer instead of its own copy of the value.
    private var current = SharedConfig(EncodedConfig())
    private var config: EncodedConfig { current.config }
    public private(set) var events: [Event] = []
    /// A push skipped a type with a response in flight: the next answer pushes again.
    public private(set) var pushDeferred = false
    /// A CDS push went out while EDS had a response in flight: EDS is owed one (clusters warm on it).
    private var endpointsOwed = false

    public init() {}

    public func state(_ type: XDSType) -> TypeState? { types[type] }

    /// Handles one request against the current config; returns the responses to send.
    ///
    /// Names that arrive encoded with the digest of the names this stream last decoded for the
    /// type are not decoded: the subscription stands. Throws only when names must be decoded and
    /// cannot be.
    public mutating func handle(_ request: SotWRequest, config: EncodedConfig) throws -> [SotWResponse] {
        if let digest = request.namesDigest, let type = XDSType(rawValue: request.message.typeURL),
           let state = types[type], state.subscribed, state.namesDigest == digest {
            return handle(request.message, names: nil, digest: digest, config: config)
        }
        return handle(request.message, names: try request.resourceNames(), digest: request.namesDigest, config: config)
    }

    /// Handles one request whose names are decoded.
    public mutating func handle(_ request: DiscoveryRequest, config: EncodedConfig) -> [SotWResponse] {
        handle(request, names: request.resourceNames, digest: nil, config: config)
    }

    /// ``answer(_:names:digest:config:)``, then the push a response in flight held back, for the
    /// types no longer waiting.
    private mutating func handle(_ request: DiscoveryRequest, names requested: [String]?, digest: NamesDigest?,
                                 config: EncodedConfig) -> [SotWResponse] {
        var out = answer(request, names: requested, digest: digest, config: config)
        if pushDeferred { out += push(config: config) }
        return out
    }

    /// `names`: the requested names, nil when they are the ones this stream last took for the
    /// type (`digest` their digest when they came encoded).
    private mutating func answer(_ request: DiscoveryRequest, names requested: [String]?, digest: NamesDigest?,
                                 config: EncodedConfig) -> [SotWResponse] {
        serve(config)
        events.removeAll()
        guard let type = XDSType(rawValue: request.typeURL), !type.isDeltaOnly else {
            events.append(.unknownType(request.typeURL))
            return []
        }
        var state = types[type] ?? TypeState()
        defer { types[type] = state }
        let nonce = request.responseNonce
        if !nonce.isEmpty, state.sentNonce != nil, nonce != state.sentNonce {
            events.append(.stale(type))
            return []
        }
        let previousNames = state.names
        let previousWildcard = state.wildcard
        if let requested {
            take(requested, of: type, into: &state, config: config)
            state.namesDigest = digest
        }
        state.subscribed = true
        if !nonce.isEmpty { state.awaitingAnswer = false }
        if request.hasErrorDetail, !nonce.isEmpty {
            state.nack = request.errorDetail.message
            state.nackedVersion = state.sentVersion
            state.sentFrom = state.ackedFrom
            events.append(.nack(type, nonce: nonce, message: request.errorDetail.message))
            return []
        }
        if !nonce.isEmpty, nonce == state.sentNonce {
            // The ACKed version is normally the one sent: keep that string, shared with the config,
            // rather than the request's copy (a heap string per proxy and type).
            state.ackedVersion = request.versionInfo == state.sentVersion ? state.sentVersion : request.versionInfo
            state.ackedFrom = state.sentFrom
            state.nack = nil
            state.nackedVersion = nil
            events.append(.ack(type, nonce: nonce))
            guard previousNames != state.names || previousWildcard != state.wildcard else { return [] }
        }
        guard let response = response(for: type, state: &state, force: true) else { return [] }
        var out = [response]
        if type == .cluster, var eds = types[.endpoint], eds.subscribed,
           let edsResponse = self.response(for: .endpoint, state: &eds, force: true) {
            types[.endpoint] = eds
            endpointsOwed = false
            out.append(edsResponse)
        }
        return out
    }

    /// A subscription's new names.
    private func take(_ requested: [String], of type: XDSType, into state: inout TypeState, config: EncodedConfig) {
        if let shared = config.names[type], config.namesExactly(requested, of: type) {
            // Most proxies of a class name exactly the class's resources (every EDS ACK names all
            // clusters): share that set's storage, and build no set of their own.
            state.everNamed = true
            state.wildcard = false
            state.names = shared
        } else {
            let names = Set(requested)
            if !names.isEmpty { state.everNamed = true }
            state.wildcard = names.contains("*") || (names.isEmpty && !state.everNamed && type.isFullStateInSotW)
            state.names = names.subtracting(["*"])
            if let shared = config.names[type], shared == state.names { state.names = shared }
        }
    }

    /// A new config: the responses to push, in CDS, EDS, LDS, RDS order; a type whose last response
    /// is in flight waits for its answer.
    public mutating func push(config: EncodedConfig) -> [SotWResponse] {
        pushDeferred = false
        serve(config)
        var out: [SotWResponse] = []
        var clustersSent = false
        for type in XDSType.allCases {
            guard var state = types[type], state.subscribed else { continue }
            if state.awaitingAnswer {
                pushDeferred = true
                if type == .endpoint, clustersSent { endpointsOwed = true }
                continue
            }
            let force = type == .endpoint && (clustersSent || endpointsOwed)
            if let response = response(for: type, state: &state, force: force, onlyChanged: !type.isFullStateInSotW && !force) {
                out.append(response)
                if type == .cluster { clustersSent = true }
            }
            if type == .endpoint { endpointsOwed = false }
            types[type] = state
        }
        return out
    }

    /// The resources a subscription covers. EDS also covers every EDS cluster of the config,
    /// so clusters added by a CDS push warm from the EDS response that follows it.
    /// `block`: the whole type's, when the subscription covers it.
    func resources(for type: XDSType, state: TypeState) -> (list: [EncodedResource], version: String, block: EncodedBlock?) {
        let all = config[type]
        // Wildcard, and EDS (which covers every EDS cluster of the config): the whole type,
        // sorted, versioned and encoded once per proxy class.
        if state.wildcard || type == .endpoint {
            let list = config.sorted(type)
            return (list, config.fullVersion[type] ?? EncodedConfig.version(of: list), config.blocks[type])
        }
        let list = state.names.compactMap { all[$0] ?? config.resource(type, named: $0) }.sorted { $0.name < $1.name }
        return (list, EncodedConfig.version(of: list), nil)
    }

    /// - Parameter onlyChanged: send only resources whose content differs from the last response
    ///   (state of the world allows it for every type but Listener and Cluster).
    private mutating func response(for type: XDSType, state: inout TypeState, force: Bool, onlyChanged: Bool = false) -> SotWResponse? {
        let covered = resources(for: type, state: state)
        var resources = covered.list
        // The class's encoded block, unless narrowed below.
        var block = covered.block
        let version = covered.version
        if !force, version == state.sentVersion || version == state.nackedVersion {
            // Nothing new of this type: the proxy holds (or was sent) this config's content of it,
            // so later changes are derived from this config. Left at an older one, the next change
            // after more than `EncodedConfig.ancestryLimit` generations that left the type alone
            // (VirtualService edits, for EDS) would compare every resource for every proxy.
            if version == state.sentVersion, version != state.nackedVersion {
                state.sentFrom = current
                if state.ackedVersion == version { state.ackedFrom = current }
            }
            return nil
        }
        if !type.isFullStateInSotW, resources.isEmpty, state.sentVersion != nil, !force { return nil }
        if onlyChanged, let previous = state.sentFrom?.config {
            if let changed = config.changedNames(type, since: previous) {
                // Derived from what this proxy was sent: only the names the derivation changed.
                let covered = state.wildcard || type == .endpoint ? nil : state.names
                let all = config[type]
                resources = changed.filter { covered?.contains($0) ?? true }.compactMap { all[$0] }.sorted { $0.name < $1.name }
            } else {
                // Sent from a config further back than the ancestry (a proxy that answers slower
                // than the snapshots change): a walk of the two sorted lists.
                resources = EncodedConfig.changed(resources, since: previous.sorted(type))
            }
            // Only removals: nothing to send (a resource nobody references is dropped by the proxy).
            if resources.isEmpty { return nil }
            block = nil
        }
        nonceCounter += 1
        var response = DiscoveryResponse()
        response.typeURL = type.typeURL
        response.versionInfo = version
        response.nonce = String(nonceCounter)
        if block == nil { response.resources = resources.map(\.any) }
        state.sentVersion = version
        state.sentNonce = response.nonce
        state.sentFrom = current
        state.awaitingAnswer = true
        return SotWResponse(response, block: block)
    }

    private mutating func serve(_ config: EncodedConfig) {
        if config.id != current.config.id { current = SharedConfig(config) }
    }

    /// An immutable config referred to by pointer.
    final class SharedConfig: Sendable {
        let config: EncodedConfig
        init(_ config: EncodedConfig) { self.config = config }
    }
}
