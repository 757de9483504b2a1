import BenchmarkWorkload
import MCP
import Snapshot

/// Mutable config as served by the in-process MCP source: the change driver edits it.
final class ConfigDriver: @unchecked Sendable {
    let workload: Workload
    private(set) var serviceEntries: [ConfigResource]
    private(set) var virtualServices: [ConfigResource]
    private var sequence = 0
    let source: MCPSource

    init(workload: Workload, source: MCPSource) {
        self.workload = workload
        self.source = source
        serviceEntries = (0..<workload.services).map { workload.serviceEntry($0) }
        virtualServices = (0..<workload.services).map { workload.virtualService($0) }
    }

    func publishAll() {
        source.replace([workload.gateway()] + serviceEntries + virtualServices + (0..<workload.services).map(workload.destinationRule))
    }

    /// Edits VirtualService `index`: its canary header value becomes a unique marker, returned.
    func editVirtualService(_ index: Int, publish: Bool = true, marker chosen: String? = nil) -> String {
        sequence += 1
        let marker = chosen ?? "bench-mark-\(sequence)-\(index)"
        virtualServices[index] = workload.virtualService(index, marker: marker)
        if publish { source.replace(kind: .virtualService, with: virtualServices) }
        return marker
    }

    func publishVirtualServices() { source.replace(kind: .virtualService, with: virtualServices) }

    /// Moves the first endpoint of service `index` to a new, unique address, returned.
    func moveEndpoint(_ index: Int, publish: Bool = true) -> String {
        sequence += 1
        let address = Workload.movedAddress(sequence: sequence)
        serviceEntries[index] = workload.serviceEntry(index, firstEndpoint: address)
        if publish { source.replace(kind: .serviceEntry, with: serviceEntries) }
        return address
    }

    func publishServiceEntries() { source.replace(kind: .serviceEntry, with: serviceEntries) }
}

