import EnvoyAPI
import Foundation
import Mesh
import SwiftProtobuf

extension Proxy {
    /// Reads an Envoy/gRPC node: Istio-style id plus `NAMESPACE`, `LABELS`, `GENERATOR`, `CLUSTER_ID` metadata.
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
    }
}
