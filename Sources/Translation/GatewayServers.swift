import IstioAPI
import Mesh
import Snapshot

/// The servers of the Gateways a router applies, merged per port.
public struct GatewayServers: Sendable {
    /// One server together with the gateway that declared it.
    public struct Entry: Sendable {
        public var gateway: ConfigKey
        public var server: Istio_Networking_V1alpha3_Server

        /// `namespace/host` pairs of the server's hosts (`./h` → gateway ns, `*/h` or bare → any namespace).
        public var hosts: [(namespace: String, host: String)] {
            server.hosts.map { entry in
                guard let slash = entry.firstIndex(of: "/") else { return ("*", entry) }
                let namespace = String(entry[..<slash])
                let host = String(entry[entry.index(after: slash)...])
                return (namespace == "." ? gateway.namespace : namespace, host)
            }
        }
    }

    /// Plaintext HTTP servers by port number.
    public var httpByPort: [UInt32: [Entry]] = [:]

    public init(for proxy: Proxy, in model: MeshModel) {
        for resource in model.gateways(for: proxy) {
            guard case .gateway(let gateway) = resource.spec else { continue }
            for server in gateway.servers {
                let proto = server.port.protocol.uppercased()
                guard ["HTTP", "HTTP2", "GRPC"].contains(proto), !server.hasTls || server.tls.httpsRedirect else { continue }
                httpByPort[server.port.number, default: []].append(Entry(gateway: resource.key, server: server))
            }
        }
    }

    public var ports: [UInt32] { httpByPort.keys.sorted() }
}

/// Host name matching with Istio's wildcard rules.
public enum HostMatch {
    /// `a` and `b` overlap (`*` matches all, `*.x.com` matches `y.x.com` and `*.y.x.com`).
    public static func overlaps(_ a: String, _ b: String) -> Bool {
        if a == b || a == "*" || b == "*" { return true }
        if a.hasPrefix("*"), b.hasPrefix("*") {
            let (sa, sb) = (a.dropFirst(), b.dropFirst())
            return sa.hasSuffix(sb) || sb.hasSuffix(sa)
        }
        if a.hasPrefix("*") { return b.hasSuffix(a.dropFirst()) }
        if b.hasPrefix("*") { return a.hasSuffix(b.dropFirst()) }
        return false
    }

    /// The more specific of two overlapping hosts (Istio's intersection keeps the narrower one).
    public static func narrower(_ a: String, _ b: String) -> String {
        if a == "*" { return b }
        if b == "*" { return a }
        if a.hasPrefix("*"), !b.hasPrefix("*") { return b }
        if b.hasPrefix("*"), !a.hasPrefix("*") { return a }
        return a.count >= b.count ? a : b
    }
}
