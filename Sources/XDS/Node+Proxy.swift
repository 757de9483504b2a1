import EnvoyAPI
import Foundation
import Mesh
import SwiftProtobuf

extension Proxy {
    /// Reads an Envoy/gRPC node: Istio-style id plus `NAMESPACE`, `LABELS`, `GENERATOR`, `CLUSTER_ID`
    /// and the file-mounted certificate (`TLS_CLIENT_*`) metadata.
    public init(node: Envoy_Config_Core_V3_Node) throws(NodeIDError) {
        let fields = node.metadata.fields
        var labels: [String: String] = [:]
        if case .structValue(let map)? = fields["LABELS"]?.kind {
            for (key, value) in map.fields {
                if case .stringValue(let string)? = value.kind { labels[key] = string }
            }
        }
        func string(_ key: String) -> String? {
            if case .stringValue(let value)? = fields[key]?.kind { return value }
            return nil
        }
        let locality = node.hasLocality
            ? [node.locality.region, node.locality.zone, node.locality.subZone].joined(separator: "/").replacingOccurrences(of: "/+$", with: "", options: .regularExpression)
            : ""
        try self.init(nodeID: node.id, metadataNamespace: string("NAMESPACE"), labels: labels,
                      generator: string("GENERATOR"), clusterID: string("CLUSTER_ID") ?? node.cluster, locality: locality)
        if let chain = string("TLS_CLIENT_CERT_CHAIN"), let key = string("TLS_CLIENT_KEY"), let root = string("TLS_CLIENT_ROOT_CERT"),
           !chain.isEmpty, !key.isEmpty, !root.isEmpty {
            workloadCertificates = WorkloadCertificates(certificateChain: chain, privateKey: key, rootCertificate: root)
        }
    }
}

extension Envoy_Config_Core_V3_Node {
    /// Node metadata `SWIFTPILOT_VHDS` (`"true"`/`"false"` or a bool): whether routes reach this
    /// proxy over VHDS when it speaks delta ADS. Absent means on.
    public var virtualHostDiscovery: Bool {
        get throws(NodeMetadataError) {
            switch metadata.fields[Self.virtualHostDiscoveryKey]?.kind {
            case nil: return true
            case .boolValue(let value)?: return value
            case .stringValue(let value)? where ["true", "false"].contains(value.lowercased()): return value.lowercased() == "true"
            case let other?:
                throw NodeMetadataError(key: Self.virtualHostDiscoveryKey, value: "\(other)",
                                        expected: "\"true\" or \"false\" (VHDS is on by default for delta ADS; \"false\" sends whole route configurations)")
            }
        }
    }

    public static let virtualHostDiscoveryKey = "SWIFTPILOT_VHDS"
}

/// A node metadata value SwiftPilot cannot read.
public struct NodeMetadataError: Error, CustomStringConvertible, Sendable {
    public var key: String
    public var value: String
    public var expected: String
    public var description: String { "node metadata \(key) is \(value); expected \(expected)" }
}
