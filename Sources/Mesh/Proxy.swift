import IstioAPI
/// Who is asking for config: parsed from an Istio-style node id and node metadata.
///
/// Node ids look like `router~10.0.0.1~gateway-7d9f.istio-system~istio-system.svc.cluster.local`
/// (`type~ip~id~dnsDomain`).
public struct Proxy: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case router, sidecar
    }

    public var kind: Kind
    public var ipAddress: String
    public var id: String
    public var dnsDomain: String
    /// Config namespace: `NAMESPACE` metadata, else derived from the id (`name.namespace`) or DNS domain.
    public var namespace: String
    /// Workload labels (`LABELS` metadata); gateways select routers by these.
    public var labels: [String: String]
    /// `GENERATOR=grpc` marks a proxyless gRPC client.
    public var isProxylessGRPC: Bool
    public var clusterID: String
    /// `region/zone/subzone` of the proxy (Envoy `node.locality`); empty when unknown.
    public var locality: String
    /// The workload's own certificate files for `ISTIO_MUTUAL` clusters (Istio's file-mounted
    /// certificates: node metadata `TLS_CLIENT_CERT_CHAIN`, `TLS_CLIENT_KEY`, `TLS_CLIENT_ROOT_CERT`);
    /// nil when the node names none.
    public var workloadCertificates: WorkloadCertificates?

    /// Paths, on the proxy's machine, of a workload certificate chain, its key and the mesh's root.
    public struct WorkloadCertificates: Sendable, Hashable {
        public var certificateChain: String
        public var privateKey: String
        public var rootCertificate: String

        public init(certificateChain: String, privateKey: String, rootCertificate: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
            self.rootCertificate = rootCertificate
        }
    }

    public init(kind: Kind, ipAddress: String = "", id: String = "", dnsDomain: String = "", namespace: String,
                labels: [String: String] = [:], isProxylessGRPC: Bool = false, clusterID: String = "", locality: String = "",
                workloadCertificates: WorkloadCertificates? = nil) {
        self.kind = kind
        self.ipAddress = ipAddress
        self.id = id
        self.dnsDomain = dnsDomain
        self.namespace = namespace
        self.labels = labels
        self.isProxylessGRPC = isProxylessGRPC
        self.clusterID = clusterID
        self.locality = locality
        self.workloadCertificates = workloadCertificates
    }

    /// Why a node id was refused.
    public struct NodeIDError: Error, CustomStringConvertible, Sendable {
        public var nodeID: String
        public var reason: String
        public var description: String {
            "node id '\(nodeID)' \(reason); expected 'router~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local' or 'sidecar~…'"
        }
    }

    /// Parses an Istio-style node id plus the metadata SwiftPilot reads.
    public init(nodeID: String, metadataNamespace: String? = nil, labels: [String: String] = [:],
                generator: String? = nil, clusterID: String = "", locality: String = "") throws(NodeIDError) {
        let parts = nodeID.split(separator: "~", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { throw NodeIDError(nodeID: nodeID, reason: "has \(parts.count) '~'-separated parts, not 4") }
        guard let kind = Kind(rawValue: parts[0]) else {
            throw NodeIDError(nodeID: nodeID, reason: "has type '\(parts[0])'; SwiftPilot serves 'router' and 'sidecar'")
        }
        var namespace = metadataNamespace ?? ""
        if namespace.isEmpty {
            let idParts = parts[2].split(separator: ".")
            if idParts.count >= 2 { namespace = String(idParts[1]) }
        }
        if namespace.isEmpty, let first = parts[3].split(separator: ".").first { namespace = String(first) }
        guard !namespace.isEmpty else {
            throw NodeIDError(nodeID: nodeID, reason: "names no namespace (set NAMESPACE metadata or use '<name>.<namespace>' as id)")
        }
        self.init(kind: kind, ipAddress: parts[1], id: parts[2], dnsDomain: parts[3], namespace: namespace,
                  labels: labels, isProxylessGRPC: generator == "grpc", clusterID: clusterID, locality: locality)
    }
}
