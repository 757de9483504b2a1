import Snapshot

/// What differs between two mesh models as far as translation is concerned, so a new generation
/// rebuilds only what a change can reach.
public struct MeshChange: Sendable, Equatable {
    /// Services whose endpoints alone changed, and whose endpoints travel over EDS: only their
    /// ClusterLoadAssignments change.
    public var endpointHosts: Set<String> = []
    /// Gateways or VirtualServices changed: listeners and routes change.
    public var routing = false
    /// Something that shapes clusters or inbound listeners changed (a service's ports, resolution
    /// or visibility, DNS endpoints, DestinationRules, PeerAuthentications): everything is rebuilt.
    public var everything = false

    public init(endpointHosts: Set<String> = [], routing: Bool = false, everything: Bool = false) {
        self.endpointHosts = endpointHosts
        self.routing = routing
        self.everything = everything
    }

    public init(from old: MeshModel, to new: MeshModel) {
        // Collections the two models share (same revision): the same content, nothing to compare.
        func changed(_ kinds: ConfigKind...) -> Bool {
            !kinds.allSatisfy { old.sameCollection($0, as: new.collectionRevisions[$0]) }
        }
        everything = (changed(.destinationRule) && old.destinationRulesByNamespace != new.destinationRulesByNamespace)
            || (changed(.peerAuthentication) && !Self.sameResources(old.peerAuthentications, new.peerAuthentications))
        routing = (changed(.gateway) && !Self.sameResources(old.gateways, new.gateways))
            || (changed(.virtualService) && !Self.sameResources(old.virtualServices, new.virtualServices))
        guard changed(.serviceEntry, .workloadEntry) else { return }
        if let hosts = new.changedHosts(since: old) {
            // The new services were updated from the old ones: only these hosts can differ.
            for host in hosts { compare(old.services[host], new.services[host], host: host) }
            return
        }
        for (host, service) in new.services { compare(old.services[host], service, host: host) }
        if old.services.keys.contains(where: { new.services[$0] == nil }) { everything = true }
    }

    /// Records how a host's service changed: its endpoints alone (over EDS), or more.
    private mutating func compare(_ before: Service?, _ after: Service?, host: String) {
        guard let before, let after else {
            if before != nil || after != nil { everything = true }
            return
        }
        guard before != after else { return }
        var withOldEndpoints = after
        withOldEndpoints.endpoints = before.endpoints
        if withOldEndpoints == before, after.resolution == .staticEndpoints || after.resolution == .passthrough {
            endpointHosts.insert(host)
        } else {
            everything = true
        }
    }

    public var isEmpty: Bool { endpointHosts.isEmpty && !routing && !everything }

    /// Same resources in the same order with the same content (creation time orders VirtualServices).
    static func sameResources(_ a: [ConfigResource], _ b: [ConfigResource]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { old, new in
            old.key == new.key && old.createTime == new.createTime && old.hasSameContent(as: new)
        }
    }
}

extension MeshModel.DestinationRuleIndex: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        a.exact.count == b.exact.count && MeshChange.sameResources(a.wildcard, b.wildcard)
            && a.exact.allSatisfy { host, rules in b.exact[host].map { MeshChange.sameResources(rules, $0) } ?? false }
    }
}
