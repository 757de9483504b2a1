import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Snapshot

/// How to reach one MCP source: address, TLS, limits, and what to ask it for.
///
/// Written as a URL: `xds://host:port?versions=v1,v1alpha3&required=ServiceEntry&ca=/ca.pem&cert=/c.pem&key=/k.pem&sni=name`.
public struct SourceConnection: Sendable, Equatable {
    public struct TLS: Sendable, Equatable {
        /// CA bundle (PEM) that must have signed the server's certificate; nil = system roots.
        public var caFile: String?
        /// Client certificate chain and key (PEM) for mutual TLS.
        public var certificateFile: String?
        public var keyFile: String?
        /// Server name for SNI and certificate verification (default: the host).
        public var serverName: String?
    }

    public var host: String
    public var port: Int
    /// API versions to request each kind under (`v1` as current istiod; `v1alpha3` for Nacos-style servers).
    public var versions: [String] = ["v1"]
    /// Kinds to subscribe to (a legacy source ends the stream on a collection it does not serve).
    public var kinds: [ConfigKind] = ConfigKind.allCases
    /// Kinds that must have been answered before the source counts as synced (default: every
    /// subscribed networking kind; PeerAuthentication is optional, as not every source serves it).
    public var requiredKinds: Set<ConfigKind> = Set(ConfigKind.networking)
    public var tls: TLS?
    /// Largest response accepted (Istio's legacy 4 MiB is far too small for large meshes).
    public var maxMessageBytes: Int = 256 << 20
    /// Legacy MCP: resume sessions with `initial_resource_versions` (only for sources that honour them).
    public var resume = false
    public var keepalive: Duration = .seconds(30)
    public var keepaliveTimeout: Duration = .seconds(10)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Why a source URL was refused.
    public struct ParseError: Error, CustomStringConvertible {
        public var url: String
        public var reason: String
        public var description: String { "config source '\(url)': \(reason)" }
    }

    /// The kinds a source is asked for by default: every kind over MCP-over-xDS; the networking
    /// kinds over legacy MCP, whose Galley-era sources before Istio 1.5 end the stream on the
    /// security collections.
    public static func defaultKinds(legacy: Bool) -> [ConfigKind] { legacy ? ConfigKind.networking : ConfigKind.allCases }

    /// Parses `host:port` plus the query options of a source URL.
    public init(url: String, authority: String, query: String?, defaultKinds: [ConfigKind] = ConfigKind.allCases) throws(ParseError) {
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
            throw ParseError(url: url, reason: "needs host:port")
        }
        self.init(host: String(authority[..<colon]), port: port)
        kinds = defaultKinds
        var tls = TLS()
        var wantsTLS = false
        var explicitRequired = false
        for item in (query ?? "").split(separator: "&") {
            let pair = item.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            let (key, value) = (pair[0], pair.count > 1 ? pair[1] : "")
            switch key {
            case "versions":
                versions = value.split(separator: ",").map(String.init)
                guard !versions.isEmpty, versions.allSatisfy(["v1alpha3", "v1beta1", "v1"].contains) else {
                    throw ParseError(url: url, reason: "versions must be a comma-separated list of v1alpha3, v1beta1, v1")
                }
            case "required":
                requiredKinds = Set(try Self.kinds(value, option: key, url: url))
                explicitRequired = true
            case "kinds":
                kinds = try Self.kinds(value, option: key, url: url)
            case "ca": tls.caFile = value; wantsTLS = true
            case "cert": tls.certificateFile = value; wantsTLS = true
            case "key": tls.keyFile = value; wantsTLS = true
            case "sni": tls.serverName = value; wantsTLS = true
            case "tls": wantsTLS = value != "false"
            case "resume": resume = value != "false"
            case "max-message-bytes":
                guard let bytes = Int(value), bytes > 0 else { throw ParseError(url: url, reason: "max-message-bytes must be a positive number") }
                maxMessageBytes = bytes
            default:
                throw ParseError(url: url, reason: "unknown option '\(key)' (known: kinds, versions, required, resume, tls, ca, cert, key, sni, max-message-bytes)")
            }
        }
        if !explicitRequired {
            let networking = Set(kinds).intersection(ConfigKind.networking)
            requiredKinds = networking.isEmpty ? Set(kinds) : networking
        }
        if (tls.certificateFile == nil) != (tls.keyFile == nil) {
            throw ParseError(url: url, reason: "cert and key go together")
        }
        if wantsTLS { self.tls = tls }
    }

    static func kinds(_ list: String, option: String, url: String) throws(ParseError) -> [ConfigKind] {
        var kinds: [ConfigKind] = []
        for name in list.split(separator: ",") where !name.isEmpty {
            guard let kind = ConfigKind(rawValue: String(name)) else {
                throw ParseError(url: url, reason: "\(option): '\(name)' is not one of \(ConfigKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kinds.append(kind)
        }
        return kinds
    }

    /// The gRPC client transport for this source.
    func makeTransport() throws -> HTTP2ClientTransport.Posix {
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tls {
            security = .tls { config in
                if let ca = tls.caFile { config.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
                if let certificate = tls.certificateFile, let key = tls.keyFile {
                    config.certificateChain = [.file(path: certificate, format: .pem)]
                    config.privateKey = .file(path: key, format: .pem)
                }
            }
        } else {
            security = .plaintext
        }
        return try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port), transportSecurity: security,
            config: .defaults { config in
                config.connection.maxIdleTime = nil
                config.connection.keepalive = .init(time: keepalive, timeout: keepaliveTimeout, allowWithoutCalls: true)
                if let name = tls?.serverName { config.http2.authority = name }
            })
    }
}
