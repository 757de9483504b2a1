import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf
import Testing
@testable import Translation

let tlsGatewayYAML = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https-a, protocol: HTTPS}
    hosts: [b.example.com, a.example.com]
    tls: {mode: SIMPLE, serverCertificate: /certs/server.pem, privateKey: /certs/server.key}
  - port: {number: 8443, name: https-m, protocol: HTTPS}
    name: mutual
    hosts: [m.example.com]
    tls: {mode: MUTUAL, serverCertificate: /certs/server.pem, privateKey: /certs/server.key, caCertificates: /certs/ca.pem}
  - port: {number: 8443, name: pass, protocol: TLS}
    hosts: ["*.pass.example.com"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 8443, name: no-files, protocol: HTTPS}
    hosts: [nofiles.example.com]
    tls: {mode: SIMPLE, credentialName: some-secret}
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 8080, name: tcp-conflict, protocol: TCP}
    hosts: ["*"]
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backends, namespace: istio-system}
spec:
  hosts: [db.internal, pass.internal]
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.9}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [gw]
  tcp:
  - match: [{port: 9000}]
    route:
    - {destination: {host: db.internal, port: {number: 5432}}, weight: 80}
    - {destination: {host: pass.internal, port: {number: 5432}}, weight: 20}
  tls:
  - match: [{sniHosts: [x.pass.example.com, other.example.org]}]
    route: [{destination: {host: pass.internal, port: {number: 5432}}}]
"""

func listener(_ config: ProxyConfig, _ name: String) -> Listener {
    let found = config.listeners.first { $0.name == name }
    #expect(found != nil, "no listener \(name) in \(config.listeners.map(\.name))")
    return found ?? Listener()
}

func downstreamTLS(_ chain: Envoy_Config_Listener_V3_FilterChain) throws -> Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext {
    try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(serializedBytes: chain.transportSocket.typedConfig.value)
}

func connectionManager(_ chain: Envoy_Config_Listener_V3_FilterChain) throws -> Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager {
    #expect(chain.filters.map(\.name) == ["envoy.filters.network.http_connection_manager"])
    return try .init(serializedBytes: chain.filters[0].typedConfig.value)
}

func tcpProxy(_ chain: Envoy_Config_Listener_V3_FilterChain) throws -> Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy {
    #expect(chain.filters.map(\.name) == ["envoy.filters.network.tcp_proxy"])
    return try .init(serializedBytes: chain.filters[0].typedConfig.value)
}

@Suite struct ListenerBuilderTests {
    let config = Translator.config(for: router, in: model(tlsGatewayYAML))

    @Test func tlsServersBecomeSNIFilterChainsWithTheirOwnRoutes() throws {
        let tls = listener(config, "0.0.0.0_8443")
        #expect(tls.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector"])
        #expect(tls.filterChains.map(\.filterChainMatch.serverNames) == [
            ["a.example.com", "b.example.com"], ["m.example.com"], ["x.pass.example.com"],
        ], "the server without certificate files gets no chain")
        let simple = try downstreamTLS(tls.filterChains[0])
        #expect(simple.commonTlsContext.tlsCertificates.map(\.certificateChain.filename) == ["/certs/server.pem"])
        #expect(simple.commonTlsContext.alpnProtocols == ["h2", "http/1.1"])
        #expect(simple.commonTlsContext.tlsParams.tlsMinimumProtocolVersion == .tlsv12)
        #expect(!simple.requireClientCertificate.value)
        #expect(try connectionManager(tls.filterChains[0]).rds.routeConfigName == "https.8443.https-a.gw.istio-system")
        let mutual = try downstreamTLS(tls.filterChains[1])
        #expect(mutual.requireClientCertificate.value)
        #expect(mutual.commonTlsContext.validationContext.trustedCa.filename == "/certs/ca.pem")
        #expect(try connectionManager(tls.filterChains[1]).statPrefix == "mutual", "the server name is the stat prefix")
        #expect(Set(config.routes.map(\.name)).isSuperset(of: ["https.8443.https-a.gw.istio-system", "https.8443.https-m.gw.istio-system", "http.8080"]))
    }

    @Test func passthroughChainsProxyToTheTLSRouteWithoutTermination() throws {
        let chain = listener(config, "0.0.0.0_8443").filterChains[2]
        #expect(!chain.hasTransportSocket)
        #expect(try tcpProxy(chain).cluster == "outbound|5432||pass.internal")
    }

    @Test func tcpServersUseTheFirstMatchingTCPRoute() throws {
        let tcp = listener(config, "0.0.0.0_9000")
        #expect(tcp.listenerFilters.isEmpty)
        #expect(tcp.filterChains.count == 1)
        let proxy = try tcpProxy(tcp.filterChains[0])
        #expect(proxy.weightedClusters.clusters.map(\.name) == ["outbound|5432||db.internal", "outbound|5432||pass.internal"])
        #expect(proxy.weightedClusters.clusters.map(\.weight) == [80, 20])
    }

    @Test func tcpConnectionLimitsComeFromTheDestinationRule() throws {
        let config = Translator.config(for: router, in: model(tlsGatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: db, namespace: istio-system}
        spec:
          host: db.internal
          trafficPolicy: {connectionPool: {tcp: {idleTimeout: 300s, maxConnectionDuration: 3600s}}}
        """))
        let proxy = try tcpProxy(listener(config, "0.0.0.0_9000").filterChains[0])
        #expect(proxy.idleTimeout.seconds == 300)
        #expect(proxy.maxDownstreamConnectionDuration.seconds == 3600)
        let passthrough = try tcpProxy(listener(config, "0.0.0.0_8443").filterChains[2])
        #expect(!passthrough.hasIdleTimeout, "pass.internal has no rule")
    }

    @Test func httpAndTCPDoNotShareAPortAndServerProblemsAreReported() throws {
        let http = listener(config, "0.0.0.0_8080")
        #expect(http.filterChains.count == 1)
        #expect(try connectionManager(http.filterChains[0]).rds.routeConfigName == "http.8080")
        let fields = config.diagnostics.map(\.field)
        #expect(fields.contains("spec.servers[5].port"), "\(config.diagnostics)")
        #expect(fields.contains("spec.servers[3].tls"), "\(config.diagnostics)")
    }

    @Test func boundServersGetTheirOwnListenerAndRouteNames() throws {
        let config = Translator.config(for: router, in: model("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: istio-system}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - {port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}
          - {port: {number: 8080, name: http-local, protocol: HTTP}, hosts: ["*"], bind: 127.0.0.1}
          - port: {number: 8443, name: https, protocol: HTTPS}
            hosts: ["*"]
            bind: 127.0.0.1
            tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /c.key}
        """))
        #expect(config.listeners.map(\.name) == ["0.0.0.0_8080", "127.0.0.1_8080", "127.0.0.1_8443"])
        #expect(config.listeners[1].address.socketAddress.address == "127.0.0.1")
        let manager = try connectionManager(config.listeners[1].filterChains[0])
        #expect(manager.rds.routeConfigName == "http.8080.127.0.0.1")
        #expect(manager.statPrefix == "outbound_127.0.0.1_8080")
        #expect(config.routes.map(\.name) == ["http.8080", "http.8080.127.0.0.1", "https.8443.https.gw.istio-system.127.0.0.1"])
    }

    @Test func optionalMutualVerifiesOnlyPresentedClientCertificates() throws {
        var tls = Istio_Networking_V1alpha3_ServerTLSSettings()
        tls.mode = .optionalMutual
        tls.serverCertificate = "/certs/server.pem"
        tls.privateKey = "/certs/server.key"
        #expect(ListenerBuilder.downstreamTLS(tls, alpn: []) == nil, "client verification needs caCertificates")
        tls.caCertificates = "/certs/ca.pem"
        tls.verifyCertificateSpki = ["spki"]
        tls.verifyCertificateHash = ["hash"]
        tls.minProtocolVersion = .tlsv13
        let context = try #require(ListenerBuilder.downstreamTLS(tls, alpn: []))
        #expect(context.hasRequireClientCertificate && !context.requireClientCertificate.value)
        #expect(context.commonTlsContext.validationContext.trustedCa.filename == "/certs/ca.pem")
        #expect(context.commonTlsContext.validationContext.verifyCertificateSpki == ["spki"])
        #expect(context.commonTlsContext.validationContext.verifyCertificateHash == ["hash"])
        #expect(context.commonTlsContext.tlsParams.tlsMinimumProtocolVersion == .tlsv13)
    }

    @Test func httpsRedirectRequiresTLSOnTheVirtualHosts() {
        let config = Translator.config(for: router, in: model(tlsGatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: [a.example.com]
          gateways: [gw]
          http: [{route: [{destination: {host: db.internal}}]}]
        """))
        let plain = config.routes.first { $0.name == "http.8080" }!
        #expect(plain.virtualHosts.map(\.requireTls) == [.all])
        let secure = config.routes.first { $0.name == "https.8443.https-a.gw.istio-system" }!
        #expect(secure.virtualHosts.map(\.name) == ["a.example.com:8443"])
        #expect(secure.virtualHosts.map(\.requireTls) == [.none])
        let mutual = config.routes.first { $0.name == "https.8443.https-m.gw.istio-system" }!
        #expect(mutual.virtualHosts.map(\.name) == ["blackhole:8443"], "a.example.com is not a host of that server")
    }
}
