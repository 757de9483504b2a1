import EnvoyAPI
import Mesh
import SwiftProtobuf
import Testing
@testable import XDS

@Suite struct ProxyIdentityTests {
    @Test func routerNodeWithMetadata() throws {
        var node = Envoy_Config_Core_V3_Node()
        node.id = "router~10.0.0.1~gw-7d9f.istio-system~istio-system.svc.cluster.local"
        var labels = Google_Protobuf_Struct()
        labels.fields["istio"] = Google_Protobuf_Value(stringValue: "ingressgateway")
        node.metadata.fields["LABELS"] = Google_Protobuf_Value(structValue: labels)
        node.metadata.fields["NAMESPACE"] = Google_Protobuf_Value(stringValue: "gateways")
        let proxy = try Proxy(node: node)
        #expect(proxy.kind == .router)
        #expect(proxy.ipAddress == "10.0.0.1")
        #expect(proxy.namespace == "gateways", "NAMESPACE metadata wins over the id")
        #expect(proxy.labels == ["istio": "ingressgateway"])
        #expect(!proxy.isProxylessGRPC)
    }

    @Test func namespaceFromTheIdAndGeneratorGRPC() throws {
        var node = Envoy_Config_Core_V3_Node()
        node.id = "sidecar~10.0.0.2~app-1.shop~shop.svc.cluster.local"
        node.metadata.fields["GENERATOR"] = Google_Protobuf_Value(stringValue: "grpc")
        let proxy = try Proxy(node: node)
        #expect(proxy.kind == .sidecar)
        #expect(proxy.namespace == "shop")
        #expect(proxy.isProxylessGRPC)
    }

    @Test func malformedNodesAreRefusedWithTheReason() {
        for id in ["", "envoy-1", "router~1.2.3.4~x", "gateway~1.2.3.4~a.b~b.svc.cluster.local"] {
            #expect(throws: Proxy.NodeIDError.self) { try Proxy(nodeID: id) }
        }
    }

    @Test func firstRequestWithoutNodeIsInvalidArgument() {
        var request = DiscoveryRequest()
        request.typeURL = XDSType.cluster.typeURL
        #expect(throws: (any Error).self) { try DiscoveryStreams.proxy(from: request.hasNode ? request.node : nil) }
        request.node.id = "bogus"
        do {
            _ = try DiscoveryStreams.proxy(from: request.hasNode ? request.node : nil)
            Issue.record("a malformed node id was accepted")
        } catch {
            #expect("\(error)".contains("bogus"))
        }
    }
}
