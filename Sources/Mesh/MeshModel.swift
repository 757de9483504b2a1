import IstioAPI
import Snapshot
import Synchronization

/// The validated, indexed view of a snapshot that translation reads. Pure values, no I/O.
public struct MeshModel: Sendable {
    public let snapshotVersion: UInt64
    /// Services by hostname; on a duplicate hostname the oldest ServiceEntry (then name order) wins.
    public let services: [String: Service]
    /// Gateways, sorted by namespace/name.
    public let gateways: [ConfigResource]
    /// VirtualServices in Istio's order: creation time, then name, then namespace.
    public let virtualServices: [ConfigResource]
    /// DestinationRules of one namespace, in Istio's order, indexed by their (qualified) host.
    public struct DestinationRuleIndex: Sendable {
        /// Rules for exact host names.
        public var exact: [String: [ConfigResource]] = [:]
        /// Rules for wildcard hosts (`*.example.com`, `*`).
        public var wildcard: [ConfigResource] = []
    }

    /// DestinationRules by namespace.
    public let destinationRulesByNamespace: [String: DestinationRuleIndex]
    /// PeerAuthentications in Istio's order (the oldest of a level wins).
    public let peerAuthentications: [ConfigResource]

    /// The revision of each collection this model was built from (``Snapshot/Collection/revision``):
    /// a later model reuses what was built from a collection whose revision it shares.
    public let collectionRevisions: [ConfigKind: UInt64]

    /// The ServiceEntries ``services`` were built from (the snapshot's collection, shared storage).
    let serviceEntries: [String: ConfigResource]
    /// How many ServiceEntries declare each host: a host one ServiceEntry declares follows that
    /// entry alone, so a change to it rebuilds its services and no others.
    let hostDeclarations: [String: Int]
    /// Whether the snapshot had WorkloadEntries.
    let hasWorkloadEntries: Bool
    /// Identifies ``services`` (a model that reuses them keeps it).
    let servicesID: UInt64
    /// When ``services`` were updated from an earlier model's rather than built afresh: that model's
    /// ``servicesID`` and the hosts whose service may differ from it.
    let servicesUpdate: (base: UInt64, hosts: Set<String>)?
    private static let servicesCounter = Atomic<UInt64>(0)

    /// The model of a snapshot. With `previous` (the model of an earlier snapshot of the same store),
    /// the parts whose collections are the same (same non-zero revision) are reused instead of
    /// rebuilt: an endpoint change rebuilds the services only.
    public init(snapshot: Snapshot, previous: MeshModel? = nil) {
        snapshotVersion = snapshot.version
        var revisions: [ConfigKind: UInt64] = [:]
        for kind in ConfigKind.allCases { revisions[kind] = snapshot[kind].revision }
        collectionRevisions = revisions
        func unchanged(_ kinds: ConfigKind...) -> MeshModel? {
            guard let previous, kinds.allSatisfy({ previous.sameCollection($0, as: revisions[$0]) }) else { return nil }
            return previous
        }
        serviceEntries = snapshot[.serviceEntry].resources
        hasWorkloadEntries = !snapshot[.workloadEntry].resources.isEmpty
        if let same = unchanged(.serviceEntry, .workloadEntry) {
            services = same.services
            hostDeclarations = same.hostDeclarations
            servicesID = same.servicesID
            servicesUpdate = same.servicesUpdate
        } else {
            let workloadEntries = Array(snapshot[.workloadEntry].resources.values)
            servicesID = Self.servicesCounter.add(1, ordering: .relaxed).newValue
            // (WorkloadEntries are read by the entries that select them: they must be the same.)
            if let previous, previous.sameCollection(.workloadEntry, as: revisions[.workloadEntry])
                || (workloadEntries.isEmpty && !previous.hasWorkloadEntries),
               let update = Self.updatedServices(of: previous, entries: serviceEntries, workloadEntries: workloadEntries) {
                (services, hostDeclarations) = (update.services, update.declarations)
                servicesUpdate = (previous.servicesID, update.hosts)
            } else {
                var services: [String: Service] = [:]
                for resource in Self.istioOrder(serviceEntries.values) {
                    guard case .serviceEntry(let entry) = resource.spec else { continue }
                    for service in Self.services(from: entry, resource: resource, workloadEntries: workloadEntries)
                    where services[service.hostname] == nil {
                        services[service.hostname] = service
                    }
                }
                self.services = services
                hostDeclarations = Self.hostDeclarations(of: serviceEntries.values)
                servicesUpdate = nil
            }
        }
        gateways = unchanged(.gateway)?.gateways ?? snapshot.resources(.gateway)
        virtualServices = unchanged(.virtualService)?.virtualServices
            ?? previous.flatMap { Self.inSameOrder($0.virtualServices, snapshot[.virtualService].resources) }
            ?? Self.istioOrder(snapshot[.virtualService].resources.values)
        if let same = unchanged(.destinationRule) {
            destinationRulesByNamespace = same.destinationRulesByNamespace
        } else {
            var rules: [String: DestinationRuleIndex] = [:]
            for resource in Self.istioOrder(snapshot[.destinationRule].resources.values) {
                guard case .destinationRule(let rule) = resource.spec else { continue }
                let host = Hostname.qualified(rule.host, namespace: resource.key.namespace)
                if host.hasPrefix("*") {
                    rules[resource.key.namespace, default: DestinationRuleIndex()].wildcard.append(resource)
                } else {
                    rules[resource.key.namespace, default: DestinationRuleIndex()].exact[host, default: []].append(resource)
                }
            }
            destinationRulesByNamespace = rules
        }
        peerAuthentications = unchanged(.peerAuthentication)?.peerAuthentications
            ?? Self.istioOrder(snapshot[.peerAuthentication].resources.values)
    }

    /// The hosts whose service may differ from `old`'s, when known without comparing every
    /// service: this model's services are `old`'s, or were updated from them.
    func changedHosts(since old: MeshModel) -> Set<String>? {
        if servicesID == old.servicesID { return [] }
        guard let servicesUpdate, servicesUpdate.base == old.servicesID else { return nil }
        return servicesUpdate.hosts
    }

    /// The hosts each ServiceEntry declares, counted once per entry.
    static func hostDeclarations(of entries: some Sequence<ConfigResource>) -> [String: Int] {
        var counts: [String: Int] = [:]
        for resource in entries {
            for host in declaredHosts(resource) { counts[host, default: 0] += 1 }
        }
        return counts
    }

    static func declaredHosts(_ resource: ConfigResource?) -> Set<String> {
        guard case .serviceEntry(let entry)? = resource?.spec else { return [] }
        return Set(entry.hosts)
    }

    /// `previous`'s services with those of the ServiceEntries that changed, were added or removed
    /// since rebuilt; nil when a full build is needed: many entries changed, or a host concerned is
    /// declared by more than one entry (Istio's order then picks among them).
    static func updatedServices(of previous: MeshModel, entries: [String: ConfigResource], workloadEntries: [ConfigResource])
        -> (services: [String: Service], declarations: [String: Int], hosts: Set<String>)? {
        let limit = max(8, entries.count / 8)
        var changed: [String] = []
        for (name, resource) in entries {
            if let before = previous.serviceEntries[name], before.createTime == resource.createTime, before.hasSameContent(as: resource) { continue }
            changed.append(name)
            if changed.count > limit { return nil }
        }
        for name in previous.serviceEntries.keys where entries[name] == nil {
            changed.append(name)
            if changed.count > limit { return nil }
        }
        var declarations = previous.hostDeclarations
        var hosts = Set<String>()
        for name in changed {
            for host in declaredHosts(previous.serviceEntries[name]) {
                declarations[host, default: 0] -= 1
                hosts.insert(host)
            }
            for host in declaredHosts(entries[name]) {
                declarations[host, default: 0] += 1
                hosts.insert(host)
            }
        }
        for host in hosts {
            guard (previous.hostDeclarations[host] ?? 0) <= 1, let count = declarations[host], count <= 1 else { return nil }
            if count == 0 { declarations.removeValue(forKey: host) }
        }
        var services = previous.services
        for host in hosts { services.removeValue(forKey: host) }
        for name in changed {
            guard let resource = entries[name], case .serviceEntry(let entry) = resource.spec else { continue }
            for service in Self.services(from: entry, resource: resource, workloadEntries: workloadEntries)
            where services[service.hostname] == nil {
                services[service.hostname] = service
            }
        }
        return (services, declarations, hosts)
    }

    /// Whether this model was built from the collection of `kind` with this revision.
    func sameCollection(_ kind: ConfigKind, as revision: UInt64?) -> Bool {
        guard let revision, revision != 0 else { return false }
        return collectionRevisions[kind] == revision
    }

    /// `resources` in the order of `ordered` when they are the same resources by name with the same
    /// creation times (only content changed, as when a VirtualService is edited): Istio's order
    /// without sorting. Nil when a resource was added, removed or recreated.
    static func inSameOrder(_ ordered: [ConfigResource], _ resources: [String: ConfigResource]) -> [ConfigResource]? {
        guard ordered.count == resources.count else { return nil }
        var result: [ConfigResource] = []
        result.reserveCapacity(ordered.count)
        for before in ordered {
            guard let now = resources[before.key.resourceName], now.createTime == before.createTime else { return nil }
            result.append(now)
        }
        return result
    }

    /// Creation time, then name, then namespace (what Istio sorts config by). Sorts positions, not
    /// the (large) resources themselves.
    static func istioOrder(_ resources: some Collection<ConfigResource>) -> [ConfigResource] {
        let all = Array(resources)
        // The sort keys, read once: comparing through `all[i]` copies resources in and out.
        let keys = all.map { ($0.createTime?.timeIntervalSince1970 ?? 0, $0.key.name, $0.key.namespace) }
        let order = keys.indices.sorted { keys[$0] < keys[$1] }
        return order.map { all[$0] }
    }

    static func services(from entry: ServiceEntry, resource: ConfigResource, workloadEntries: [ConfigResource]) -> [Service] {
        let resolution: Service.Resolution = switch entry.resolution {
        case .static: .staticEndpoints
        case .dns: .dns
        case .dnsRoundRobin: .dnsRoundRobin
        default: .passthrough
        }
        let ports = entry.ports.map { Service.Port(number: $0.number, name: $0.name, protocol: $0.protocol, targetPort: $0.targetPort) }
        var endpoints = entry.endpoints.map { Self.endpoint($0, extraLabels: [:]) }
        if entry.hasWorkloadSelector {
            for candidate in workloadEntries where candidate.key.namespace == resource.key.namespace {
                guard case .workloadEntry(let workload) = candidate.spec else { continue }
                var labels = workload.labels
                labels.merge(candidate.labels) { _, metadata in metadata }
                let endpoint = Self.endpoint(workload, extraLabels: candidate.labels)
                // Hostname workloads are only eligible for DNS resolution.
                let eligible = endpoint.hasIPAddress || resolution == .dns || resolution == .dnsRoundRobin
                if eligible, labels.matches(selector: entry.workloadSelector.labels) { endpoints.append(endpoint) }
            }
        }
        return entry.hosts.map { host in
            var hostEndpoints = endpoints
            if hostEndpoints.isEmpty, resolution == .dns || resolution == .dnsRoundRobin {
                hostEndpoints = [Service.Endpoint(address: host, ports: [:], labels: [:], weight: 1, locality: "")]
            }
            return Service(hostname: host, namespace: resource.key.namespace, ports: ports, resolution: resolution,
                           meshExternal: entry.location == .meshExternal, exportTo: entry.exportTo,
                           endpoints: hostEndpoints, subjectAltNames: entry.subjectAltNames, source: resource.key)
        }
    }

    static func endpoint(_ workload: WorkloadEntry, extraLabels: [String: String]) -> Service.Endpoint {
        var labels = workload.labels
        labels.merge(extraLabels) { _, metadata in metadata }
        return Service.Endpoint(address: workload.address, ports: workload.ports, labels: labels,
                                weight: workload.weight == 0 ? 1 : workload.weight, locality: workload.locality,
                                serviceAccount: workload.serviceAccount)
    }

    /// Gateways that apply to a router: selector ⊆ proxy labels (any namespace), or no selector.
    public func gateways(for proxy: Proxy) -> [ConfigResource] {
        gateways.filter { resource in
            guard case .gateway(let gateway) = resource.spec else { return false }
            return proxy.labels.matches(selector: gateway.selector)
        }
    }

    /// The DestinationRule for a service as seen from a proxy namespace (Istio §1.6): rules in the
    /// proxy's namespace (unless it is the root namespace), then the service's namespace, then the
    /// root namespace, the last two only when exported to the proxy. Within a namespace the most
    /// specific host wins (exact, then the longest wildcard), and rules for that same host merge:
    /// subsets concatenate (first definition of a name wins), the first traffic policy wins.
    public func destinationRule(host: String, proxyNamespace: String, serviceNamespace: String) -> DestinationRule? {
        destinationRuleResource(host: host, proxyNamespace: proxyNamespace, serviceNamespace: serviceNamespace)?.rule
    }

    /// ``destinationRule(host:proxyNamespace:serviceNamespace:)`` with the key of the (first) rule used.
    public func destinationRuleResource(host: String, proxyNamespace: String, serviceNamespace: String) -> (key: ConfigKey, rule: DestinationRule)? {
        var namespaces: [String] = []
        if proxyNamespace != Self.rootNamespace { namespaces.append(proxyNamespace) }
        namespaces += [serviceNamespace, Self.rootNamespace]
        var seen = Set<String>()
        for namespace in namespaces where seen.insert(namespace).inserted {
            let index = destinationRulesByNamespace[namespace] ?? DestinationRuleIndex()
            let candidates = ((index.exact[host] ?? []) + index.wildcard).filter { resource in
                namespace == proxyNamespace || Self.isExported(resource, to: proxyNamespace)
            }
            if let found = Self.mostSpecific(candidates, for: host) { return found }
        }
        return nil
    }

    /// Istio's root namespace (mesh-wide defaults live there).
    public static let rootNamespace = "istio-system"

    static func isExported(_ resource: ConfigResource, to namespace: String) -> Bool {
        guard case .destinationRule(let rule) = resource.spec else { return false }
        return exportTo(rule.exportTo, from: resource.key.namespace, includes: namespace)
    }

    /// The rules whose host is the most specific match of `host`, merged.
    static func mostSpecific(_ resources: [ConfigResource], for host: String) -> (key: ConfigKey, rule: DestinationRule)? {
        var best: (pattern: String, matches: [(ConfigKey, DestinationRule)])?
        for resource in resources {
            guard case .destinationRule(let rule) = resource.spec else { continue }
            let pattern = Hostname.qualified(rule.host, namespace: resource.key.namespace)
            guard Hostname.matches(host, pattern: pattern) else { continue }
            if let current = best, current.pattern == pattern {
                best?.matches.append((resource.key, rule))
            } else if best == nil || Hostname.isMoreSpecific(pattern, than: best!.pattern) {
                best = (pattern, [(resource.key, rule)])
            }
        }
        guard let best, var merged = best.matches.first?.1 else { return nil }
        for (_, rule) in best.matches.dropFirst() {
            if !merged.hasTrafficPolicy, rule.hasTrafficPolicy { merged.trafficPolicy = rule.trafficPolicy }
            for subset in rule.subsets where !merged.subsets.contains(where: { $0.name == subset.name }) {
                merged.subsets.append(subset)
            }
        }
        return (best.matches[0].0, merged)
    }

    /// VirtualServices exported to `namespace` (`exportTo` empty, `*`, the namespace, or `.` from
    /// within it). A gateway sees those exported to its proxy's namespace, in Istio's order: private
    /// ones of the namespace first, then those exported to it by name, then public ones; each group
    /// in creation order.
    public func virtualServices(visibleTo namespace: String) -> [ConfigResource] {
        // Every one public (the common case): the list as it is, its storage shared.
        let allPublic = virtualServices.allSatisfy { resource in
            guard case .virtualService(let service) = resource.spec else { return false }
            return service.exportTo.isEmpty || service.exportTo.contains("*")
        }
        if allPublic { return virtualServices }
        var groups: [[ConfigResource]] = [[], [], []]
        for resource in virtualServices {
            guard case .virtualService(let service) = resource.spec,
                  Self.exportTo(service.exportTo, from: resource.key.namespace, includes: namespace) else { continue }
            let exportTo = service.exportTo
            if exportTo.isEmpty || exportTo.contains("*") {
                groups[2].append(resource)
            } else if exportTo.contains(namespace) {
                groups[1].append(resource)
            } else {
                groups[0].append(resource)
            }
        }
        return groups.flatMap { $0 }
    }

    /// Istio's `exportTo` semantics (empty means public).
    public static func exportTo(_ exportTo: [String], from owner: String, includes namespace: String) -> Bool {
        exportTo.isEmpty || exportTo.contains("*") || exportTo.contains(namespace) || (exportTo.contains(".") && namespace == owner)
    }

    /// Services visible to a namespace, sorted by hostname.
    public func services(visibleTo namespace: String) -> [Service] {
        services.values.filter { $0.isVisible(to: namespace) }.sorted { $0.hostname < $1.hostname }
    }
}
