import EnvoyAPI
import IstioAPI
import SwiftProtobuf

typealias ServerTLSSettings = Istio_Networking_V1alpha3_ServerTLSSettings
typealias DownstreamTLSContext = Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext

/// Gateway server `tls` → downstream TLS context with certificates from files (Istio §2.3).
extension ListenerBuilder {
    /// SIMPLE/MUTUAL/OPTIONAL_MUTUAL termination (the last verifies a client certificate only when
    /// one is presented); nil when the server lacks the files it needs (see ``Diagnostics``).
    static func downstreamTLS(_ tls: ServerTLSSettings, alpn: [String]) -> DownstreamTLSContext? {
        guard !tls.serverCertificate.isEmpty, !tls.privateKey.isEmpty else { return nil }
        var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
        common.tlsCertificates = [ClusterBuilder.certificate(chain: tls.serverCertificate, key: tls.privateKey)]
        common.tlsParams.tlsMinimumProtocolVersion = protocolVersion(tls.minProtocolVersion, default: .tlsv12)
        common.tlsParams.tlsMaximumProtocolVersion = protocolVersion(tls.maxProtocolVersion, default: .tlsv13)
        common.tlsParams.cipherSuites = tls.cipherSuites
        common.alpnProtocols = alpn
        var context = DownstreamTLSContext()
        if tls.mode == .mutual || tls.mode == .optionalMutual {
            guard !tls.caCertificates.isEmpty else { return nil }
            var validation = ClusterBuilder.validationContext(caFile: tls.caCertificates, subjectAltNames: tls.subjectAltNames,
                                                              crlFile: tls.caCrl)
            validation.verifyCertificateSpki = tls.verifyCertificateSpki
            validation.verifyCertificateHash = tls.verifyCertificateHash
            common.validationContext = validation
            context.requireClientCertificate = Google_Protobuf_BoolValue(tls.mode == .mutual)
        }
        context.commonTlsContext = common
        return context
    }

    static func protocolVersion(_ version: ServerTLSSettings.TLSProtocol,
                                default fallback: Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters.TlsProtocol)
        -> Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters.TlsProtocol {
        switch version {
        case .tlsv10: .tlsv10
        case .tlsv11: .tlsv11
        case .tlsv12: .tlsv12
        case .tlsv13: .tlsv13
        default: fallback
        }
    }
}
