import IstioAPI
import Snapshot

/// The mutual TLS a workload requires of inbound connections, from PeerAuthentication.
public struct InboundMutualTLS: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable {
        case disable = "DISABLE"
        case permissive = "PERMISSIVE"
        case strict = "STRICT"
    }

    /// The workload-wide mode.
    public var mode: Mode
    /// Ports whose mode differs from ``mode`` (workload port number → mode).
    public var ports: [UInt32: Mode]

    public init(mode: Mode = .permissive, ports: [UInt32: Mode] = [:]) {
        self.mode = mode
        self.ports = ports
    }

    public func mode(port: UInt32) -> Mode { ports[port] ?? mode }
}

extension MeshModel {
    /// The inbound mutual TLS of a workload (Istio's PeerAuthentication composition): the oldest
    /// policy whose selector matches the workload in its namespace, else the oldest selector-less
    /// one of its namespace, else the oldest selector-less one of the root namespace (mesh-wide).
    /// An UNSET mode inherits from the next level; with nothing set the mode is PERMISSIVE.
    /// Per-port settings come from the workload policy and inherit its effective mode when UNSET.
    public func inboundMutualTLS(for proxy: Proxy) -> InboundMutualTLS {
        func policies(in namespace: String) -> [PeerAuthentication] {
            peerAuthentications.compactMap { resource in
                guard resource.key.namespace == namespace, case .peerAuthentication(let policy) = resource.spec else { return nil }
                return policy
            }
        }
        let own = policies(in: proxy.namespace)
        let workload = own.first { $0.hasSelector && !$0.selector.matchLabels.isEmpty && proxy.labels.matches(selector: $0.selector.matchLabels) }
        let namespace = own.first { $0.selector.matchLabels.isEmpty }
        let mesh = policies(in: Self.rootNamespace).first { $0.selector.matchLabels.isEmpty }
        var mode = InboundMutualTLS.Mode.permissive
        for level in [mesh, namespace, workload] {
            if let level, let set = Self.mode(level.mtls.mode) { mode = set }
        }
        var result = InboundMutualTLS(mode: mode)
        for (port, setting) in workload?.portLevelMtls ?? [:] {
            if let set = Self.mode(setting.mode), set != mode { result.ports[port] = set }
        }
        return result
    }

    static func mode(_ mode: PeerAuthentication.MutualTLS.Mode) -> InboundMutualTLS.Mode? {
        switch mode {
        case .disable: .disable
        case .permissive: .permissive
        case .strict: .strict
        default: nil
        }
    }
}
