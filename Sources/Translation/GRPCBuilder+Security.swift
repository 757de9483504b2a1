import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias CertificateProvider = Envoy_Extensions_TransportSockets_Tls_V3_CertificateProviderPluginInstance

/// Mutual TLS for proxyless gRPC (Istio §7.2, §7.4): clients and xDS-enabled servers take their
/// certificates from the certificate provider instance `default` of their own bootstrap
/// (certificate `default`, root `ROOTCA`); SwiftPilot only says when to use them.
extension GRPCBuilder {
    /// The prefix of the listener names xDS-enabled gRPC servers request
    /// (`server_listener_resource_name_template`): `xds.istio.io/grpc/lds/inbound/<ip>:<port>`.
    public static let inboundListenerPrefix = "xds.istio.io/grpc/lds/inbound/"

    /// The listener an xDS-enabled gRPC server asked for by name: its address, and one filter
    /// chain, `inbound-mtls` when the workload's PeerAuthentication is STRICT on the port, else
    /// `inbound-plaintext` (PERMISSIVE serves plaintext: gRPC cannot sniff TLS). Routes accept every
    /// RPC (`non_forwarding_action`). Nil for a name that is not an inbound listener name.
    public static func inboundListener(named name: String, mutualTLS: InboundMutualTLS) -> Listener? {
        guard name.hasPrefix(inboundListenerPrefix) else { return nil }
        let hostPort = name.dropFirst(inboundListenerPrefix.count)
        guard let colon = hostPort.lastIndex(of: ":"), let port = UInt32(hostPort[hostPort.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(hostPort[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        let strict = mutualTLS.mode(port: port) == .strict

        var route = Route()
        route.match.prefix = "/"
        route.nonForwardingAction = Envoy_Config_Route_V3_NonForwardingAction()
        var virtualHost = VirtualHost()
        virtualHost.name = "inbound|\(port)"
        virtualHost.domains = ["*"]
        virtualHost.routes = [route]
        var routes = RouteConfiguration()
        routes.name = "inbound|\(port)"
        routes.virtualHosts = [virtualHost]
        var manager = HTTPConnectionManager()
        manager.statPrefix = routes.name
        manager.routeConfig = routes
        manager.httpFilters = [ListenerBuilder.httpFilter("envoy.filters.http.router", Envoy_Extensions_Filters_Http_Router_V3_Router())]

        var chain = FilterChain()
        chain.name = strict ? "inbound-mtls" : "inbound-plaintext"
        chain.filters = [ListenerBuilder.networkFilter("envoy.filters.network.http_connection_manager", manager)]
        if strict {
            var context = DownstreamTLSContext()
            context.commonTlsContext = certificateProviderContext()
            context.requireClientCertificate = Google_Protobuf_BoolValue(true)
            chain.transportSocket = ClusterBuilder.transportSocket(context)
        }
        var listener = Listener()
        listener.name = name
        listener.address = .socket(host, port: port)
        listener.filterChains = [chain]
        return listener
    }

    /// The client side of ISTIO_MUTUAL: the workload certificate, the mesh root, and the
    /// identities the server may present (Istio's SPIFFE ids of the endpoints, or the rule's SANs).
    static func istioMutualSocket(_ tls: ClientTLSSettings, service: Service) -> Envoy_Config_Core_V3_TransportSocket {
        var common = certificateProviderContext()
        // gRPC reads the untyped SAN matchers (exact): URIs and DNS names alike.
        common.validationContext.matchSubjectAltNames = ClusterBuilder.istioSubjectAltNames(tls, service: service).map { name in
            var matcher = Envoy_Type_Matcher_V3_StringMatcher()
            matcher.exact = name
            return matcher
        }
        var context = UpstreamTLSContext()
        context.commonTlsContext = common
        return ClusterBuilder.transportSocket(context)
    }

    /// Certificate `default` and root `ROOTCA` of the provider instance `default`.
    static func certificateProviderContext() -> Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext {
        func provider(_ certificate: String) -> CertificateProvider {
            var instance = CertificateProvider()
            instance.instanceName = "default"
            instance.certificateName = certificate
            return instance
        }
        var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
        common.tlsCertificateProviderInstance = provider("default")
        common.validationContext.caCertificateProviderInstance = provider("ROOTCA")
        return common
    }
}
