import IstioAPI
import Mesh
import Snapshot

/// The servers of the Gateways a router applies, grouped per port (Istio §2.2).
public struct GatewayServers: Sendable {
    /// How a server's traffic is handled.
    public enum Kind: Sendable, Equatable {
        /// Plaintext HTTP/HTTP2/GRPC (also with `httpsRedirect`): merged into RDS `http.<port>`.
        case http
        /// HTTPS terminated with certificate files: own filter chain and RDS `https.<port>.<portName>.<gw>.<ns>`.
        case https
        /// TLS terminated, then TCP to the VS `tcp` route.
        case terminatedTCP
        /// TLS passed through by SNI to the VS `tls` routes.
        case passthrough
        /// Plain TCP to the VS `tcp` route.
        case tcp

        /// TLS modes SwiftPilot terminates with certificate files (ISTIO_MUTUAL needs Istio's CA).
        static func terminates(_ mode: Istio_Networking_V1alpha3_ServerTLSSettings.TLSmode) -> Bool {
            mode == .simple || mode == .mutual || mode == .optionalMutual
        }

        /// Kinds that live together on one listener, told apart by SNI.
        var usesSNI: Bool { self == .https || self == .terminatedTCP || self == .passthrough }

        /// The kind of a server, or nil when SwiftPilot cannot serve it (see ``Diagnostics``).
        static func of(_ server: Istio_Networking_V1alpha3_Server) -> Kind? {
            let mode = server.tls.mode
            switch server.port.protocol.uppercased() {
            case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
                return .http
            case "HTTPS":
                if !server.hasTls || mode == .passthrough { return .passthrough }
                return terminates(mode) ? .https : nil
            case "TLS":
                if !server.hasTls || mode == .passthrough { return .passthrough }
                return terminates(mode) ? .terminatedTCP : nil
            case "TCP", "MONGO", "MYSQL", "REDIS":
                return .tcp
            default:
                return nil
            }
        }
    }

    /// One server together with the gateway that declared it.
    public struct Entry: Sendable {
        public let gateway: ConfigKey
        public let server: Istio_Networking_V1alpha3_Server
        public let kind: Kind

        /// `namespace/host` pairs of the server's hosts (`./h` → gateway ns, `*/h` or bare → any namespace).
        public let hosts: [(namespace: String, host: String)]
        /// Positions in ``hosts`` by exact host name, and of the wildcard hosts: binding a
        /// VirtualService host looks at its own name and the wildcards only, not every server host.
        let exactHostPositions: [String: [Int]]
        let wildcardHostPositions: [Int]

        public init(gateway: ConfigKey, server: Istio_Networking_V1alpha3_Server, kind: Kind) {
            self.gateway = gateway
            self.server = server
            self.kind = kind
            hosts = server.hosts.map { entry in
                guard let slash = entry.firstIndex(of: "/") else { return ("*", entry) }
                let namespace = String(entry[..<slash])
                let host = String(entry[entry.index(after: slash)...])
                return (namespace == "." ? gateway.namespace : namespace, host)
            }
            var exact: [String: [Int]] = [:]
            var wildcard: [Int] = []
            for (position, entry) in hosts.enumerated() {
                if entry.host.hasPrefix("*") { wildcard.append(position) } else { exact[entry.host, default: []].append(position) }
            }
            exactHostPositions = exact
            wildcardHostPositions = wildcard
        }

        /// SNI names for the filter chain match: hosts without namespace, sorted; none for `*`.
        public var serverNames: [String] {
            let names = Set(hosts.map(\.host))
            return names.contains("*") ? [] : names.sorted()
        }

        /// RDS name of an HTTPS server: `https.<port>.<portName>.<gateway>.<namespace>` (+ `.<bind>`).
        public var httpsRouteName: String {
            Names.gatewayHTTPSRoute(port: server.port.number, portName: server.port.name,
                                    gateway: gateway.name, namespace: gateway.namespace, bind: server.bind)
        }

        public var address: Address { Address(bind: server.bind, port: server.port.number) }
    }

    /// Where a listener binds: a server's `bind` (empty = all addresses) and port.
    public struct Address: Hashable, Comparable, Sendable {
        public var bind: String
        public var port: UInt32

        /// The IP the listener binds to.
        public var listenerBind: String { bind.isEmpty ? "0.0.0.0" : bind }
        /// `<bind>_<port>`, e.g. `0.0.0.0_8080`.
        public var listenerName: String { Names.listener(bind: listenerBind, port: port) }
        /// `http.<port>` (+ `.<bind>`).
        public var httpRouteName: String { Names.gatewayHTTPRoute(port: port, bind: bind) }

        public static func < (a: Address, b: Address) -> Bool { (a.port, a.bind) < (b.port, b.bind) }
    }

    /// Servers by listener address. Plaintext HTTP and TCP do not share an address with anything
    /// else: the first server seen there decides (gateways in namespace/name order, servers in order).
    public var byAddress: [Address: [Entry]] = [:]

    public init(for proxy: Proxy, in model: MeshModel) {
        for resource in model.gateways(for: proxy) {
            guard case .gateway(let gateway) = resource.spec else { continue }
            for server in gateway.servers {
                guard let kind = Kind.of(server) else { continue }
                let entry = Entry(gateway: resource.key, server: server, kind: kind)
                let existing = byAddress[entry.address, default: []]
                if let first = existing.first, !Self.compatible(first.kind, kind) { continue }
                byAddress[entry.address] = existing + [entry]
            }
        }
    }

    static func compatible(_ a: Kind, _ b: Kind) -> Bool {
        (a == .http && b == .http) || (a.usesSNI && b.usesSNI)
    }

    public var addresses: [Address] { byAddress.keys.sorted() }

    /// Plaintext HTTP servers by listener address.
    public var httpByAddress: [Address: [Entry]] {
        byAddress.compactMapValues { entries in
            let http = entries.filter { $0.kind == .http }
            return http.isEmpty ? nil : http
        }
    }

    /// HTTPS (terminated HTTP) servers, in address order.
    public var httpsServers: [Entry] {
        addresses.flatMap { byAddress[$0]!.filter { $0.kind == .https } }
    }
}

extension GatewayServers.Entry {
    /// Host names a VirtualService in `namespace` binds on this server (Istio §2.5 step 2): the VS
    /// names this server's gateway, and each VS host overlapping a server host visible to the VS
    /// namespace yields the narrower of the two, lower-cased. Empty when the VS does not bind.
    public func boundHosts(of service: VirtualService, namespace: String) -> [String] {
        let names = Set(service.gateways.map { RouteBuilder.gatewayName($0, namespace: namespace) })
        guard names.contains(gateway.resourceName) else { return [] }
        // (server host position, VS host position) of every overlapping pair, in the order a
        // scan of server hosts, then VS hosts, would find them.
        var pairs: [(server: Int, host: Int)] = []
        for (hostPosition, host) in service.hosts.enumerated() {
            let candidates = host.hasPrefix("*") ? Array(hosts.indices)
                : (exactHostPositions[host] ?? []) + wildcardHostPositions
            for position in candidates where HostMatch.overlaps(host, hosts[position].host) {
                let hostNamespace = hosts[position].namespace
                if hostNamespace == "*" || hostNamespace == namespace { pairs.append((position, hostPosition)) }
            }
        }
        pairs.sort { ($0.server, $0.host) < ($1.server, $1.host) }
        var bound: [String] = []
        for (position, hostPosition) in pairs {
            let name = HostMatch.narrower(service.hosts[hostPosition], hosts[position].host).lowercased()
            if !bound.contains(name) { bound.append(name) }
        }
        return bound
    }

    /// The VirtualServices visible to the router's namespace that bind this server, in Istio order.
    func boundVirtualServices(in model: MeshModel, proxyNamespace: String) -> [(ConfigResource, VirtualService)] {
        model.virtualServices(visibleTo: proxyNamespace).compactMap { resource in
            guard case .virtualService(let service) = resource.spec,
                  !boundHosts(of: service, namespace: resource.key.namespace).isEmpty else { return nil }
            return (resource, service)
        }
    }
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
