import EnvoyAPI
import Foundation
import SwiftProtobuf
import Translation

public typealias DeltaDiscoveryRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
public typealias DeltaDiscoveryResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

/// The state of one delta (incremental) stream. Pure, like ``SotWStream``. Rules:
/// - subscription changes always apply, even from a request with a stale nonce;
/// - only changed resources are sent; `removed_resources` lists what the client has that no
///   longer exists (or that it newly subscribed to and does not exist);
/// - on reconnect, `initial_resource_versions` says what the client has: equal versions are not
///   resent, names that no longer exist are removed;
/// - a NACK is recorded; the rejected versions are not sent again;
/// - an ACK or NACK is answered from the config the stream last served: a new config goes out with
///   ``push(config:)``, every type in order;
/// - a changed EDS cluster is followed by its endpoints (clusters warm only on a fresh EDS answer).
///
/// With ``virtualHostDiscovery`` (delta ADS to Envoy), route configurations go out without virtual
/// hosts and each virtual host is a VHDS resource `<route configuration>/<virtual host>`:
/// - a VHDS subscription to a route configuration's name covers that configuration's virtual
///   hosts; the wildcard covers those of every subscribed route configuration (Envoy 1.40 opens
///   VHDS with an empty first request, i.e. the wildcard, and routes each virtual host to its
///   route configuration by the `<route configuration>/` prefix of its name);
/// - a name `<route configuration>/<host>` that is no resource is an on-demand request: it is
///   answered with the virtual host whose domains match the host, carrying the name as an alias,
///   or, when none does, with a resource of that name and alias and no body;
/// - a route configuration sent again is followed by all its virtual hosts (Envoy may start a new
///   VHDS subscription for it, which waits for them).
public struct DeltaStream: Sendable {
    /// Every proxy keeps one per type: the flags come last, packed together.
    public struct TypeState: Sendable {
        public var names: Set<String> = []
        /// What the client holds (or was last sent): name → version.
        public var known: [String: String] = [:]
        public var sentNonce: String?
        public var ackedNonce: String?
        public var nack: String?
        /// The version of the whole type (``EncodedConfig/fullVersion``) at the last answer; with
        /// the subscription unchanged since, a push of the same version has nothing to send
        /// (skips comparing every resource per proxy).
        var syncedTo: String?
        public var wildcard = false
        public var subscribed = false
        /// `known` is the class's version map of the config at ``syncedTo`` (shared storage).
        var knownIsShared = false
    }

    public private(set) var types = XDSTypeTable<TypeState>()
    public private(set) var events: [SotWStream.Event] = []
    private var nonceCounter: UInt64 = 0
    private var config = EncodedConfig()
    /// During a push, the config before it: when the new one was derived from it
    /// (``EncodedConfig/changedNames(_:since:)``), only the changed names are compared.
    private var previousConfig: EncodedConfig?
    /// Serve route configurations over VHDS (see above).
    public let virtualHostDiscovery: Bool

    public init(virtualHostDiscovery: Bool = false) {
        self.virtualHostDiscovery = virtualHostDiscovery
    }

    public func state(_ type: XDSType) -> TypeState? { types[type] }

    /// Handles one request; returns the responses to send.
    public mutating func handle(_ request: DeltaDiscoveryRequest, config: EncodedConfig) -> [DeltaResponse] {
        events.removeAll()
        guard let type = XDSType(rawValue: request.typeURL) else {
            events.append(.unknownType(request.typeURL))
            return []
        }
        // Out of `types` while it changes (see ``response(for:force:reportMissing:aliases:unknown:)``).
        var state = types.removeValue(forKey: type) ?? TypeState()
        let first = !state.subscribed
        // An ACK or NACK (no subscription change) is answered from the config this stream last
        // served. A newer config goes out with the push that follows its publication, every type
        // in order (CDS before EDS), not type by type as ACKs happen to arrive.
        if first || !request.resourceNamesSubscribe.isEmpty || !request.resourceNamesUnsubscribe.isEmpty {
            self.config = config
        }
        state.subscribed = true
        if first {
            state.known = request.initialResourceVersions
            state.knownIsShared = false
            if request.resourceNamesSubscribe.isEmpty, request.resourceNamesUnsubscribe.isEmpty { state.wildcard = true }
        }
        // A first request's names are all new: they are the subscription (collected once, below).
        var newlySubscribed: Set<String> = []
        // Most first requests name exactly the class's resources (EDS: every cluster): take the
        // class's set (one copy for all) without building this stream's own and comparing the two.
        let namesTheClass = first && request.resourceNamesUnsubscribe.isEmpty && !request.resourceNamesSubscribe.isEmpty
            && config.namesExactly(request.resourceNamesSubscribe, of: type)
        if namesTheClass, let shared = config.names[type] {
            state.names = shared
        } else {
            for name in request.resourceNamesSubscribe {
                if name == "*" {
                    state.wildcard = true
                } else {
                    state.names.insert(name)
                    if !first { newlySubscribed.insert(name) }
                }
            }
        }
        for name in request.resourceNamesUnsubscribe {
            if name == "*" {
                state.wildcard = false
            } else {
                state.names.remove(name)
                if !first { newlySubscribed.remove(name) }
            }
        }
        let subscriptionChanged = !request.resourceNamesSubscribe.isEmpty || !request.resourceNamesUnsubscribe.isEmpty
        if subscriptionChanged { state.syncedTo = nil }
        if !state.wildcard, type != .virtualHost, first || subscriptionChanged {
            // The client drops what it no longer subscribes to. (VHDS names are route
            // configurations and hosts, not the virtual hosts the client holds.)
            for name in state.known.keys where !state.names.contains(name) {
                state.known.removeValue(forKey: name)
                state.knownIsShared = false
            }
        }
        // Most clients of a class subscribe to exactly the class's names (EDS: every cluster):
        // keep the class's set (one copy for all) instead of this stream's own.
        if subscriptionChanged, let shared = config.names[type], state.names.count == shared.count, state.names == shared {
            state.names = shared
        }
        if first { newlySubscribed = state.names }
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
        let force = first && !request.initialResourceVersions.isEmpty
            ? newlySubscribed.filter { name in request.initialResourceVersions[name] == nil } : newlySubscribed
        // The VHDS wildcard covers the subscribed route configurations: their change changes it.
        if type == .route, subscriptionChanged { types[.virtualHost]?.syncedTo = nil }
        if type == .virtualHost {
            return virtualHostResponse(force: force).map { [$0] } ?? []
        }
        guard let response = response(for: type, force: force, reportMissing: newlySubscribed) else { return [] }
        if type == .route, virtualHostDiscovery, types[.virtualHost]?.subscribed == true {
            // Route configurations sent bring all their virtual hosts.
            let routes = Set(response.resourceNames)
            if let hosts = self.response(for: .virtualHost, force: virtualHostNames(in: routes), reportMissing: []) {
                return [response, hosts]
            }
        }
        return [response]
    }

    /// A new config: the changes to push, in CDS, EDS, LDS, RDS order.
    public mutating func push(config: EncodedConfig) -> [DeltaResponse] {
        previousConfig = self.config
        defer { previousConfig = nil }
        self.config = config
        var out: [DeltaResponse] = []
        var changedEDSClusters: Set<String> = []
        var changedRoutes: Set<String> = []
        for type in XDSType.allCases {
            guard types[type]?.subscribed == true else { continue }
            let force: Set<String> = switch type {
            case .endpoint: changedEDSClusters
            case .virtualHost: virtualHostNames(in: changedRoutes)
            default: []
            }
            if let response = response(for: type, force: force, reportMissing: []) {
                if type == .cluster { changedEDSClusters = Set(response.resourceNames).intersection(config.edsClusterNames) }
                if type == .route { changedRoutes = Set(response.resourceNames) }
                out.append(response)
            }
        }
        return out
    }

    // MARK: - What a subscription covers

    /// The resources of a type this stream serves: route configurations in their VHDS form and
    /// virtual hosts when ``virtualHostDiscovery`` is on; otherwise full route configurations and
    /// no virtual hosts.
    private func available(_ type: XDSType) -> [String: EncodedResource] {
        switch type {
        case .route: virtualHostDiscovery ? config.discoveredRoutes : config[.route]
        case .virtualHost: virtualHostDiscovery ? config[.virtualHost] : [:]
        default: config[type]
        }
    }

    /// ``available(_:)`` sorted by name: the class's list, computed once per config (VHDS route
    /// configurations, a handful, are sorted here).
    private func sortedAvailable(_ type: XDSType) -> [EncodedResource] {
        switch type {
        case .route where virtualHostDiscovery: config.discoveredRoutes.values.sorted { $0.name < $1.name }
        case .virtualHost where !virtualHostDiscovery: []
        default: config.sorted(type)
        }
    }

    /// The virtual hosts of some route configurations.
    private func virtualHostNames(in routes: Set<String>) -> Set<String> {
        guard !routes.isEmpty else { return [] }
        return Set(available(.virtualHost).keys.filter { name in
            Names.splitDiscoveredVirtualHost(name).map { routes.contains($0.routeConfiguration) } ?? false
        })
    }

    /// The names in scope for a type: all (wildcard) or the subscribed ones; `whole` when that is
    /// every resource of the type.
    private func inScope(_ type: XDSType, _ state: TypeState) -> (resources: [String: EncodedResource], whole: Bool) {
        let all = available(type)
        if type == .virtualHost { return virtualHostScope(state, all: all) }
        // (VHDS route configurations are not summarized per class: never `whole`.)
        let summarized = !(type == .route && virtualHostDiscovery)
        if state.wildcard { return (all, summarized) }
        // Subscribed to exactly the class's names (EDS: every cluster). `handle` keeps the class's
        // set then, so this is one identity check.
        if summarized, state.names.count == all.count, let classNames = config.names[type], state.names == classNames { return (all, true) }
        var scope = all.filter { state.names.contains($0.key) }
        // Names the class lacks may be built on demand (a proxyless gRPC server's listener).
        if type == .listener, config.inboundMutualTLS != nil, scope.count < state.names.count {
            for name in state.names where scope[name] == nil {
                if let resource = config.resource(type, named: name) { scope[name] = resource }
            }
        }
        return (scope, false)
    }

    /// VHDS: the virtual hosts of the route configurations named (all subscribed ones for the
    /// wildcard), plus those named exactly or found for an on-demand `<route configuration>/<host>`.
    private func virtualHostScope(_ state: TypeState, all: [String: EncodedResource]) -> (resources: [String: EncodedResource], whole: Bool) {
        var routes = Set<String>()
        var entries: [String] = []
        for name in state.names {
            if name.utf8.contains(UInt8(ascii: "/")) { entries.append(name) } else { routes.insert(name) }
        }
        if state.wildcard {
            let subscribed = types[.route].map { inScope(.route, $0).resources } ?? available(.route)
            if entries.isEmpty, subscribed.count == available(.route).count { return (all, true) }
            routes.formUnion(subscribed.keys)
        }
        var scope = all.filter { name, _ in
            Names.splitDiscoveredVirtualHost(name).map { routes.contains($0.routeConfiguration) } ?? false
        }
        for entry in entries {
            if let resolved = resolveVirtualHost(entry, in: all) { scope[resolved] = all[resolved] }
        }
        return (scope, false)
    }

    /// The virtual host a VHDS name stands for: the resource of that name, or for an on-demand
    /// `<route configuration>/<host>` the route configuration's virtual host whose domains match
    /// the host the way Envoy matches them (exact, then longest `*.suffix`, `prefix*`, then `*`).
    func resolveVirtualHost(_ entry: String, in all: [String: EncodedResource]) -> String? {
        if all[entry] != nil { return entry }
        guard let (route, host) = Names.splitDiscoveredVirtualHost(entry) else { return nil }
        let bare = host.split(separator: ":").first.map(String.init) ?? host
        var best: (name: String, rank: Int, length: Int)?
        for (name, resource) in all where Names.splitDiscoveredVirtualHost(name)?.routeConfiguration == route {
            guard let virtualHost = try? Envoy_Config_Route_V3_VirtualHost(serializedBytes: resource.any.value) else { continue }
            for domain in virtualHost.domains {
                let match: (rank: Int, length: Int)? =
                    if domain == host || domain == bare { (3, domain.count) }
                    else if domain.hasPrefix("*"), domain != "*", bare.hasSuffix(domain.dropFirst()) { (2, domain.count) }
                    else if domain.hasSuffix("*"), domain != "*", bare.hasPrefix(domain.dropLast()) { (1, domain.count) }
                    else if domain == "*" { (0, 0) }
                    else { nil }
                guard let match else { continue }
                if best == nil || (match.rank, match.length, best!.name) > (best!.rank, best!.length, name) {
                    best = (name, match.rank, match.length)
                }
            }
        }
        return best?.name
    }

    /// A VHDS answer to a request: what changed or was newly asked for, plus the on-demand names
    /// among `force`, each answered with an alias (resolved) or an empty resource (unknown host).
    private mutating func virtualHostResponse(force: Set<String>) -> DeltaResponse? {
        let all = available(.virtualHost)
        var aliases: [String: [String]] = [:]
        var unknown: [String] = []
        var plain = force
        for name in force where name.utf8.contains(UInt8(ascii: "/")) && all[name] == nil {
            plain.remove(name)
            if let resolved = resolveVirtualHost(name, in: all) {
                aliases[resolved, default: []].append(name)
                plain.insert(resolved)
            } else {
                unknown.append(name)
            }
        }
        plain.formUnion(virtualHostNames(in: Set(force.filter { !$0.utf8.contains(UInt8(ascii: "/")) })))
        return response(for: .virtualHost, force: plain, reportMissing: [], aliases: aliases, unknown: unknown.sorted())
    }

    private mutating func response(for type: XDSType, force: Set<String>, reportMissing: Set<String>,
                                   aliases: [String: [String]] = [:], unknown: [String] = []) -> DeltaResponse? {
        // Taken out of `types` while it changes: a copy left there would share the storage of
        // `known` (thousands of names) and make the first write copy all of it, per proxy.
        guard var state = types.removeValue(forKey: type) else { return nil }
        defer { types[type] = state }
        // The type's content is what it was at the last answer and the subscription did not change
        // since: nothing to compare, nothing to send.
        let typeVersion = config.fullVersion[type]
        if let typeVersion, force.isEmpty, reportMissing.isEmpty, unknown.isEmpty, state.syncedTo == typeVersion { return nil }
        if force.isEmpty, reportMissing.isEmpty, unknown.isEmpty, let changed = changedSincePrevious(type, &state) {
            guard !changed.isEmpty else { return nil }
            return respond(type, state: &state, resources: changed, removed: [], version: typeVersion ?? "")
        }
        let (scope, whole) = inScope(type, state)
        let fullVersion = whole ? typeVersion : nil
        if whole, state.known.isEmpty, aliases.isEmpty, unknown.isEmpty, let shared = sharedVersions(type) {
            // A client holding nothing asks for every resource (a first subscription): all of them,
            // in the class's order, and it then holds exactly the class's map. Nothing to compare.
            // They go as the class's encoded block.
            let all = sortedAvailable(type)
            state.known = shared
            state.knownIsShared = true
            state.syncedTo = typeVersion
            // (Asked for exactly the class's names, which `handle` then shares: none missing.)
            let removed = reportMissing == config.names[type] ? [] : reportMissing.filter { scope[$0] == nil }.sorted()
            guard !all.isEmpty || !removed.isEmpty else { return nil }
            return respond(type, state: &state, resources: [], block: all.isEmpty ? nil : config.blocks[type], removed: removed,
                           version: fullVersion ?? EncodedConfig.version(of: all))
        }
        // In name order without sorting per proxy: the class's sorted list, narrowed to the scope.
        let ordered = whole ? sortedAvailable(type) : sortedAvailable(type).filter { scope[$0.name] != nil }
        var resources: [Envoy_Service_Discovery_V3_Resource] = []
        for resource in ordered where state.known[resource.name] != resource.version || force.contains(resource.name) {
            var wrapped = resource.deltaResource
            if let names = aliases[resource.name] { wrapped.aliases = names }
            resources.append(wrapped)
            state.known[resource.name] = resource.version
        }
        for name in unknown {
            // An on-demand host no virtual host serves: name and alias, no resource (Envoy's VHDS docs).
            var wrapped = Envoy_Service_Discovery_V3_Resource()
            wrapped.name = name
            wrapped.aliases = [name]
            resources.append(wrapped)
        }
        state.syncedTo = typeVersion
        var removed = state.known.keys.filter { scope[$0] == nil }.sorted()
        for name in removed { state.known.removeValue(forKey: name) }
        removed += reportMissing.filter { scope[$0] == nil && !removed.contains($0) }.sorted()
        // Answers to requests (first syncs, subscription changes) look for sharing; pushes that
        // took this path keep their own map rather than comparing every entry per proxy.
        if previousConfig == nil { shareKnownIfEqual(type, &state) } else { state.knownIsShared = false }
        guard !resources.isEmpty || !removed.isEmpty else { return nil }
        return respond(type, state: &state, resources: resources, removed: removed,
                       version: fullVersion ?? EncodedConfig.version(of: ordered))
    }

    private mutating func respond(_ type: XDSType, state: inout TypeState, resources: [Envoy_Service_Discovery_V3_Resource],
                                  block: EncodedBlock? = nil, removed: [String], version: String) -> DeltaResponse {
        nonceCounter += 1
        var response = DeltaDiscoveryResponse()
        response.typeURL = type.typeURL
        response.nonce = String(nonceCounter)
        response.systemVersionInfo = version
        response.resources = resources
        response.removedResources = removed
        state.sentNonce = response.nonce
        return DeltaResponse(response, block: block)
    }

    /// The class's name → version map of a type, when this stream serves the type's resources as
    /// they are (VHDS route configurations differ from the class's).
    private func sharedVersions(_ type: XDSType) -> [String: String]? {
        if type == .route, virtualHostDiscovery { return nil }
        if type == .virtualHost, !virtualHostDiscovery { return nil }
        return config.versions[type]
    }

    /// Thousands of proxies of a class hold the same resources: when this client's map equals the
    /// class's, keep the class's (one copy for all) instead of this stream's own.
    private func shareKnownIfEqual(_ type: XDSType, _ state: inout TypeState) {
        guard let shared = sharedVersions(type), state.known.count == shared.count, state.known == shared else {
            state.knownIsShared = false
            return
        }
        state.known = shared
        state.knownIsShared = true
    }

    /// During a push, when the client was in sync with the previous config, the new config was
    /// derived from it and nothing was removed: the changed resources in scope that the client lacks
    /// (marked as sent), without comparing every resource. Nil when that is not known.
    private func changedSincePrevious(_ type: XDSType, _ state: inout TypeState) -> [Envoy_Service_Discovery_V3_Resource]? {
        guard let previous = previousConfig, let synced = state.syncedTo, synced == previous.fullVersion[type],
              let changed = config.changedNames(type, since: previous) else { return nil }
        let before = previous[type]
        guard before.count + changed.count(where: { before[$0] == nil }) == config[type].count else { return nil }
        // VHDS: only when the scope is every virtual host (otherwise it is computed per name).
        if type == .virtualHost, !inScope(type, state).whole { return nil }
        let names = state.wildcard || type == .virtualHost ? nil : state.names
        let covers: (String) -> Bool = { name in names?.contains(name) ?? true }
        let available = available(type)
        // Held exactly the previous class map and gets every change: holds exactly the new one.
        let staysShared = state.knownIsShared && changed.allSatisfy(covers) && sharedVersions(type) != nil
        var resources: [Envoy_Service_Discovery_V3_Resource] = []
        for name in changed.sorted() where covers(name) {
            guard let resource = available[name], state.known[name] != resource.version else { continue }
            resources.append(resource.deltaResource)
            if !staysShared { state.known[name] = resource.version }
        }
        if staysShared, let shared = sharedVersions(type) {
            state.known = shared
        } else {
            state.knownIsShared = false
        }
        state.syncedTo = config.fullVersion[type]
        return resources
    }
}
