import IstioAPI
import Snapshot

/// The validated, indexed view of a snapshot that translation reads. Pure values, no I/O.
public struct MeshModel: Sendable {
    public let snapshotVersion: UInt64
    /// Services by hostname; on a duplicate hostname the oldest ServiceEntry (then name order) wins.
    public let services: [String: Service]
    /// Gateways, sorted by namespace/name.
    public let gateways: [ConfigResource]
    /// VirtualServices in Istio's order: creation time, then name, then namespace.
    public let virtualServices: [ConfigResource]
    /// DestinationRules by host.
    public let destinationRules: [String: [ConfigResource]]

    public init(snapshot: Snapshot) {
        snapshotVersion = snapshot.version
        let workloadEntries = snapshot.resources(.workloadEntry)
        var services: [String: Service] = [:]
        for resource in Self.istioOrder(snapshot.resources(.serviceEntry)) {
            guard case .serviceEntry(let entry) = resource.spec else { continue }
            for service in Self.services(from: entry, resource: resource, workloadEntries: workloadEntries)
            where services[service.hostname] == nil {
                services[service.hostname] = service
            }
        }
        self.services = services
        gateways = snapshot.resources(.gateway)
        virtualServices = Self.istioOrder(snapshot.resources(.virtualService))
        var rules: [String: [ConfigResource]] = [:]
        for resource in Self.istioOrder(snapshot.resources(.destinationRule)) {
            guard case .destinationRule(let rule) = resource.spec else { continue }
            rules[rule.host, default: []].append(resource)
        }
        destinationRules = rules
    }

    /// Creation time, then name, then namespace (what Istio sorts config by).
    static func istioOrder(_ resources: [ConfigResource]) -> [ConfigResource] {
        resources.sorted {
            let (l, r) = ($0.createTime?.timeIntervalSince1970 ?? 0, $1.createTime?.timeIntervalSince1970 ?? 0)
            if l != r { return l < r }
            if $0.key.name != $1.key.name { return $0.key.name < $1.key.name }
            return $0.key.namespace < $1.key.namespace
        }
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
                if labels.matches(selector: entry.workloadSelector.labels) {
                    endpoints.append(Self.endpoint(workload, extraLabels: candidate.labels))
                }
            }
        }
        return entry.hosts.map { host in
            var hostEndpoints = endpoints
            if hostEndpoints.isEmpty, resolution == .dns || resolution == .dnsRoundRobin {
                hostEndpoints = [Service.Endpoint(address: host, ports: [:], labels: [:], weight: 1, locality: "")]
            }
            return Service(hostname: host, namespace: resource.key.namespace, ports: ports, resolution: resolution,
                           meshExternal: entry.location == .meshExternal, exportTo: entry.exportTo,
                           endpoints: hostEndpoints, source: resource.key)
        }
    }

    static func endpoint(_ workload: WorkloadEntry, extraLabels: [String: String]) -> Service.Endpoint {
        var labels = workload.labels
        labels.merge(extraLabels) { _, metadata in metadata }
        return Service.Endpoint(address: workload.address, ports: workload.ports, labels: labels,
                                weight: workload.weight == 0 ? 1 : workload.weight, locality: workload.locality)
    }

    /// Gateways that apply to a router: selector ⊆ proxy labels (any namespace), or no selector.
    public func gateways(for proxy: Proxy) -> [ConfigResource] {
        gateways.filter { resource in
            guard case .gateway(let gateway) = resource.spec else { return false }
            return proxy.labels.matches(selector: gateway.selector)
        }
    }

    /// The DestinationRule for a host as seen from a proxy namespace (proxy namespace first, then the host's).
    public func destinationRule(host: String, proxyNamespace: String, serviceNamespace: String) -> DestinationRule? {
        guard let rules = destinationRules[host] else { return nil }
        let ordered = rules.filter { $0.key.namespace == proxyNamespace } + rules.filter { $0.key.namespace == serviceNamespace }
            + rules.filter { $0.key.namespace != proxyNamespace && $0.key.namespace != serviceNamespace }
        for resource in ordered {
            if case .destinationRule(let rule) = resource.spec { return rule }
        }
        return nil
    }

    /// Services visible to a namespace, sorted by hostname.
    public func services(visibleTo namespace: String) -> [Service] {
        services.values.filter { $0.isVisible(to: namespace) }.sorted { $0.hostname < $1.hostname }
    }
}
