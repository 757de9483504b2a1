import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias ClientTLSSettings = Istio_Networking_V1alpha3_ClientTLSSettings
typealias UpstreamTLSContext = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext

/// DestinationRule `tls` → upstream TLS transport socket (Istio §5.7), certificates from files.
extension ClusterBuilder {
    /// Trust bundle used when `caCertificates` is unset (Istio's "system" roots; Debian's path).
    public static let systemTrustBundle = "/etc/ssl/certs/ca-certificates.crt"

    struct UpstreamTLS {
        var socket: Envoy_Config_Core_V3_TransportSocket
        /// No `sni` given: Envoy sets SNI from the request host (`auto_sni`).
        var needsAutoSNI: Bool
        /// ... and verifies the certificate against that host when no SANs are given.
        var needsAutoSANValidation: Bool
    }

    /// The transport socket of SIMPLE/MUTUAL/ISTIO_MUTUAL; nil for DISABLE and for MUTUAL without
    /// certificate files (reported by ``Diagnostics``). ISTIO_MUTUAL takes the proxy's own
    /// certificate files (``Proxy/WorkloadCertificates``); callers drop a cluster that needs them
    /// when the proxy names none.
    static func upstreamTLS(_ tls: ClientTLSSettings, service: Service, port: Service.Port, subset: String = "",
                            certificates: Proxy.WorkloadCertificates? = nil) -> UpstreamTLS? {
        switch tls.mode {
        case .simple: break
        case .mutual where !tls.clientCertificate.isEmpty && !tls.privateKey.isEmpty: break
        case .istioMutual:
            guard let certificates else { return nil }
            return UpstreamTLS(socket: transportSocket(istioMutual(tls, service: service, port: port, subset: subset, certificates: certificates)),
                               needsAutoSNI: false, needsAutoSANValidation: false)
        default: return nil
        }
        var context = UpstreamTLSContext()
        context.sni = tls.sni
        var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
        common.tlsParams.tlsMinimumProtocolVersion = .tlsv12
        common.tlsParams.tlsMaximumProtocolVersion = .tlsv13
        if tls.mode == .mutual {
            common.tlsCertificates = [certificate(chain: tls.clientCertificate, key: tls.privateKey)]
        }
        let names = tls.subjectAltNames.isEmpty && service.meshExternal ? service.subjectAltNames : tls.subjectAltNames
        let verifies = !(tls.hasInsecureSkipVerify && tls.insecureSkipVerify.value)
        if verifies {
            common.validationContext = validationContext(caFile: tls.caCertificates.isEmpty ? systemTrustBundle : tls.caCertificates,
                                                         subjectAltNames: names, crlFile: tls.caCrl)
        }
        if ["HTTP2", "GRPC"].contains(port.protocol.uppercased()) { common.alpnProtocols = ["h2"] }
        context.commonTlsContext = common
        let isHTTP = ["HTTP", "HTTP2", "GRPC", "GRPC-WEB"].contains(port.protocol.uppercased())
        let autoSNI = tls.sni.isEmpty && isHTTP
        return UpstreamTLS(socket: transportSocket(context), needsAutoSNI: autoSNI,
                           needsAutoSANValidation: autoSNI && verifies && names.isEmpty)
    }

    /// ISTIO_MUTUAL (Istio §5.7) from the workload's certificate files: the mesh root verifies the
    /// server, whose SANs are the DestinationRule's or else the SPIFFE ids of the service's
    /// endpoints; SNI is the DestinationRule's or `outbound_.<port>_.<subset>_.<host>`; ALPN `istio`.
    static func istioMutual(_ tls: ClientTLSSettings, service: Service, port: Service.Port, subset: String,
                            certificates: Proxy.WorkloadCertificates) -> UpstreamTLSContext {
        var context = UpstreamTLSContext()
        context.sni = tls.sni.isEmpty ? "outbound_.\(port.number)_.\(subset)_.\(service.hostname)" : tls.sni
        var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
        common.tlsParams.tlsMinimumProtocolVersion = .tlsv12
        common.tlsParams.tlsMaximumProtocolVersion = .tlsv13
        common.tlsCertificates = [certificate(chain: certificates.certificateChain, key: certificates.privateKey)]
        common.validationContext = validationContext(caFile: certificates.rootCertificate, subjectAltNames: istioSubjectAltNames(tls, service: service))
        common.alpnProtocols = ["HTTP2", "GRPC"].contains(port.protocol.uppercased()) ? ["istio", "h2"] : ["istio"]
        context.commonTlsContext = common
        return context
    }

    /// The identities an ISTIO_MUTUAL server may present: the DestinationRule's `subjectAltNames`,
    /// else `spiffe://cluster.local/ns/<namespace>/sa/<account>` of each endpoint's service account
    /// (none: any certificate the mesh root signed).
    static func istioSubjectAltNames(_ tls: ClientTLSSettings, service: Service) -> [String] {
        if !tls.subjectAltNames.isEmpty { return tls.subjectAltNames }
        let accounts = Set(service.endpoints.map(\.serviceAccount).filter { !$0.isEmpty })
        return accounts.sorted().map { "spiffe://\(trustDomain)/ns/\(service.namespace)/sa/\($0)" }
    }

    /// The SPIFFE trust domain of workload identities (Istio's default).
    public static let trustDomain = "cluster.local"

    static func certificate(chain: String, key: String) -> Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate {
        var certificate = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
        certificate.certificateChain = .file(chain)
        certificate.privateKey = .file(key)
        return certificate
    }

    /// Trusted CA from a file and, when given, exact DNS SAN matches.
    static func validationContext(caFile: String, subjectAltNames: [String], crlFile: String = "") -> Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext {
        var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
        validation.trustedCa = .file(caFile)
        if !crlFile.isEmpty { validation.crl = .file(crlFile) }
        validation.matchTypedSubjectAltNames = subjectAltNames.map { name in
            var matcher = Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher()
            matcher.sanType = name.hasPrefix("spiffe://") ? .uri : .dns
            matcher.matcher.exact = name
            return matcher
        }
        return validation
    }

    static func transportSocket(_ context: any SwiftProtobuf.Message) -> Envoy_Config_Core_V3_TransportSocket {
        var socket = Envoy_Config_Core_V3_TransportSocket()
        socket.name = "envoy.transport_sockets.tls"
        socket.typedConfig = Packing.any(context)
        return socket
    }
}

extension Envoy_Config_Core_V3_DataSource {
    /// A data source read from a file by Envoy.
    static func file(_ path: String) -> Envoy_Config_Core_V3_DataSource {
        var source = Envoy_Config_Core_V3_DataSource()
        source.filename = path
        return source
    }
}
