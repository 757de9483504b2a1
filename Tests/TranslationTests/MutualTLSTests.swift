import EnvoyAPI
import Mesh
import SwiftProtobuf
import Testing
@testable import Translation

/// ISTIO_MUTUAL and PeerAuthentication: Envoy with its workload's certificate files, proxyless
/// gRPC with its bootstrap's certificate provider.
@Suite struct MutualTLSTests {
    static func peerAuthentication(_ name: String, namespace: String, _ spec: String) -> String {
        """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: \(name), namespace: \(namespace)}
        spec: \(spec)
        """
    }

    let server = Proxy(kind: .sidecar, namespace: "shop", labels: ["app": "echo"], isProxylessGRPC: true)
    let certificates = Proxy.WorkloadCertificates(certificateChain: "/certs/cert-chain.pem", privateKey: "/certs/key.pem",
                                                  rootCertificate: "/certs/root-cert.pem")

    @Test func peerAuthenticationComposesMeshNamespaceWorkloadAndPort() {
        func mtls(_ documents: [String]) -> InboundMutualTLS {
            model(documents.joined(separator: "\n---\n")).inboundMutualTLS(for: server)
        }
        #expect(mtls([]) == InboundMutualTLS(mode: .permissive), "nothing set: PERMISSIVE")
        let mesh = Self.peerAuthentication("default", namespace: "istio-system", "{mtls: {mode: STRICT}}")
        #expect(mtls([mesh]) == InboundMutualTLS(mode: .strict))
        let namespace = Self.peerAuthentication("default", namespace: "shop", "{mtls: {mode: DISABLE}}")
        #expect(mtls([mesh, namespace]) == InboundMutualTLS(mode: .disable), "the namespace overrides the mesh")
        let other = Self.peerAuthentication("default", namespace: "other", "{mtls: {mode: DISABLE}}")
        #expect(mtls([mesh, other]) == InboundMutualTLS(mode: .strict), "another namespace's policy does not apply")
        let unset = Self.peerAuthentication("echo", namespace: "shop",
                                            "{selector: {matchLabels: {app: echo}}, portLevelMtls: {8080: {mode: DISABLE}, 9090: {mode: STRICT}}}")
        #expect(mtls([mesh, unset]) == InboundMutualTLS(mode: .strict, ports: [8080: .disable]),
                "an UNSET workload mode inherits; a port equal to it is not listed")
        let elsewhere = Self.peerAuthentication("api", namespace: "shop", "{selector: {matchLabels: {app: api}}, mtls: {mode: DISABLE}}")
        #expect(mtls([mesh, elsewhere]) == InboundMutualTLS(mode: .strict), "a selector for other workloads does not apply")
    }

    @Test func grpcServerListenerIsStrictOnlyWhereThePolicySaysSo() throws {
        let mtls = InboundMutualTLS(mode: .strict, ports: [8080: .permissive])
        let strict = try #require(GRPCBuilder.inboundListener(named: "xds.istio.io/grpc/lds/inbound/0.0.0.0:7070", mutualTLS: mtls))
        #expect(strict.name == "xds.istio.io/grpc/lds/inbound/0.0.0.0:7070")
        #expect(strict.address.socketAddress.address == "0.0.0.0" && strict.address.socketAddress.portValue == 7070)
        let chain = try #require(strict.filterChains.first)
        #expect(strict.filterChains.count == 1 && chain.name == "inbound-mtls")
        let context = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(serializedBytes: chain.transportSocket.typedConfig.value)
        #expect(chain.transportSocket.name == "envoy.transport_sockets.tls")
        #expect(context.requireClientCertificate.value)
        #expect(context.commonTlsContext.tlsCertificateProviderInstance.instanceName == "default")
        #expect(context.commonTlsContext.tlsCertificateProviderInstance.certificateName == "default")
        #expect(context.commonTlsContext.validationContext.caCertificateProviderInstance.certificateName == "ROOTCA")
        let manager = try HTTPConnectionManager(serializedBytes: chain.filters[0].typedConfig.value)
        #expect(manager.routeConfig.virtualHosts.first?.routes.first?.nonForwardingAction != nil)
        #expect(manager.routeConfig.virtualHosts.first?.domains == ["*"])
        #expect(manager.httpFilters.map(\.name) == ["envoy.filters.http.router"])

        let plaintext = try #require(GRPCBuilder.inboundListener(named: "xds.istio.io/grpc/lds/inbound/[::1]:8080", mutualTLS: mtls))
        #expect(plaintext.address.socketAddress.address == "::1")
        #expect(plaintext.filterChains.map(\.name) == ["inbound-plaintext"] && !plaintext.filterChains[0].hasTransportSocket)

        for bad in ["xds.istio.io/grpc/lds/inbound/0.0.0.0", "xds.istio.io/grpc/lds/inbound/:80", "echo:7070",
                    "xds.istio.io/grpc/lds/inbound/0.0.0.0:0", "xds.istio.io/grpc/lds/inbound/0.0.0.0:x"] {
            #expect(GRPCBuilder.inboundListener(named: bad, mutualTLS: mtls) == nil, "\(bad)")
        }
    }

    @Test func grpcClientClustersUseTheCertificateProviderForIstioMutual() throws {
        let yaml = Self.accountsYAML.replacingOccurrences(
            of: "subsets: [{name: v1, labels: {version: v1}}]",
            with: "subsets: [{name: v1, labels: {version: v1}, trafficPolicy: {tls: {mode: DISABLE}}}]")
        let config = Translator.config(for: Proxy(kind: .sidecar, namespace: "shop", isProxylessGRPC: true), in: model(yaml))
        let base = try #require(config.clusters.first { $0.name == "outbound|9080||reviews.shop.svc.cluster.local" })
        let context = try #require(try upstreamTLS(base))
        #expect(context.commonTlsContext.tlsCertificateProviderInstance.instanceName == "default")
        #expect(context.commonTlsContext.validationContext.caCertificateProviderInstance.certificateName == "ROOTCA")
        #expect(context.commonTlsContext.validationContext.matchSubjectAltNames.map(\.exact) == [
            "spiffe://cluster.local/ns/shop/sa/reviews", "spiffe://cluster.local/ns/shop/sa/reviews-v2",
        ])
        let v1 = try #require(config.clusters.first { $0.name == "outbound|9080|v1|reviews.shop.svc.cluster.local" })
        #expect(!v1.hasTransportSocket, "the subset's DISABLE wins")
        #expect(config.inboundMutualTLS == InboundMutualTLS(mode: .permissive))
    }

    static let accountsYAML = """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: reviews, namespace: shop}
    spec:
      hosts: [reviews.shop.svc.cluster.local]
      resolution: STATIC
      ports: [{number: 9080, name: http, protocol: HTTP}]
      endpoints:
      - {address: 10.0.0.1, labels: {version: v1}, serviceAccount: reviews}
      - {address: 10.0.0.2, labels: {version: v2}, serviceAccount: reviews-v2}
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: shop}
    spec:
      host: reviews.shop.svc.cluster.local
      trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
      subsets: [{name: v1, labels: {version: v1}}]
    """

    @Test func envoyIstioMutualUsesTheWorkloadCertificateFiles() throws {
        var proxy = router
        proxy.workloadCertificates = certificates
        let config = Translator.config(for: proxy, in: model(Self.accountsYAML))
        let context = try #require(try upstreamTLS(cluster(config, plain)))
        #expect(context.commonTlsContext.tlsCertificates.map(\.certificateChain.filename) == ["/certs/cert-chain.pem"])
        #expect(context.commonTlsContext.tlsCertificates.map(\.privateKey.filename) == ["/certs/key.pem"])
        #expect(context.commonTlsContext.validationContext.trustedCa.filename == "/certs/root-cert.pem")
        #expect(context.commonTlsContext.validationContext.matchTypedSubjectAltNames.map(\.matcher.exact) == [
            "spiffe://cluster.local/ns/shop/sa/reviews", "spiffe://cluster.local/ns/shop/sa/reviews-v2",
        ])
        #expect(context.commonTlsContext.validationContext.matchTypedSubjectAltNames.allSatisfy { $0.sanType == .uri })
        #expect(context.sni == "outbound_.9080_._.reviews.shop.svc.cluster.local")
        #expect(context.commonTlsContext.alpnProtocols == ["istio"])
        #expect(try upstreamTLS(cluster(config, v1))?.sni == "outbound_.9080_.v1_.reviews.shop.svc.cluster.local")
        #expect(config.diagnostics.isEmpty)
    }

    @Test func envoyWithoutCertificatesGetsNoIstioMutualClusterAndADiagnostic() throws {
        let config = Translator.config(for: router, in: model(Self.accountsYAML))
        #expect(!config.clusters.contains { $0.name == plain || $0.name == v1 }, "\(config.clusters.map(\.name))")
        #expect(!config.endpoints.contains { $0.clusterName == plain }, "no assignment for a cluster not sent")
        let diagnostic = try #require(config.diagnostics.first)
        #expect(config.diagnostics.count == 1)
        #expect(diagnostic.resource.resourceName == "shop/reviews" && diagnostic.field == "spec.trafficPolicy.tls.mode")
        #expect(diagnostic.description.contains("TLS_CLIENT_CERT_CHAIN"))
    }
}
