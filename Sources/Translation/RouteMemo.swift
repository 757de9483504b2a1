import EnvoyAPI
import Mesh
import Snapshot
import Synchronization

/// The routes translated from each VirtualService for a gateway, port and proxy namespace, kept
/// from one generation to the next so a change to one VirtualService translates that one again,
/// not every VirtualService bound to the gateway.
///
/// A memo is valid only while the rest of what route translation reads stays: the services' ports,
/// the DestinationRules and the delegate VirtualServices. So a generation carries the previous
/// memo only when ``MeshChange/everything`` is false, and a VirtualService with delegates is never
/// memoized (its routes depend on other VirtualServices). Routes taken from the memo share their
/// storage with the previous generation's, which also makes comparing them with it cheap.
///
/// It also keeps how each route configuration was assembled (``RouteAssembly``), so that an edit
/// of one VirtualService assembles again only the hosts that VirtualService binds, and the
/// problems found in each VirtualService.
public final class RouteMemo: Sendable {
    struct Key: Hashable {
        var virtualService: ConfigKey
        var gateway: String
        var port: UInt32
        var proxyNamespace: String
    }

    struct Entry: Sendable {
        /// The VirtualService as translated (its content decides whether the entry still holds).
        var resource: ConfigResource
        var routes: [Route]
    }

    /// What the previous generation's memo held when this one was created.
    private let carried: [Key: Entry]
    /// What this generation used or built: the next generation carries only these.
    private let entries = Mutex<[Key: Entry]>([:])

    /// A route configuration of a proxy namespace, by name and the gateways of its servers.
    struct AssemblyKey: Hashable {
        var name: String
        var proxyNamespace: String
        var gateways: [ConfigKey]
    }

    private let carriedAssemblies: [AssemblyKey: RouteAssembly]
    private let assemblies = Mutex<[AssemblyKey: RouteAssembly]>([:])
    /// Hosts whose virtual host this generation built (the others were kept), in build order.
    let builtHosts = Mutex<[String]>([])

    /// - Parameter previous: the memo of the generation before, when nothing but VirtualServices,
    ///   Gateways or endpoints changed since; nil starts empty.
    public init(carrying previous: RouteMemo? = nil) {
        carried = previous?.entries.withLock { $0 } ?? [:]
        carriedAssemblies = previous?.assemblies.withLock { $0 } ?? [:]
        carriedProblems = previous?.virtualServiceProblems
    }

    /// How the route configuration of `key` was last assembled, this generation or the one before.
    func assembly(_ key: AssemblyKey) -> RouteAssembly? {
        assemblies.withLock { $0[key] } ?? carriedAssemblies[key]
    }

    func remember(_ assembly: RouteAssembly, as key: AssemblyKey) {
        assemblies.withLock { $0[key] = assembly }
    }

    /// The VirtualServices of the model, in its order, and the problems found in each.
    struct Problems: Sendable {
        var virtualServices: [ConfigResource]
        var problems: [[Diagnostic]]
    }

    private let carriedProblems: Problems?
    private let problems = Mutex<Problems?>(nil)

    /// The problems found in the model's VirtualServices, this generation or the one before.
    var virtualServiceProblems: Problems? {
        get { problems.withLock { $0 } ?? carriedProblems }
        set { problems.withLock { $0 = newValue } }
    }

    /// How many route lists the memo holds.
    var count: Int { entries.withLock { $0.count } }

    /// The routes of `resource` for `gateway` in `scope`: remembered when the VirtualService has
    /// the same content as when they were built, else built by `build` and remembered.
    func routes(of resource: ConfigResource, gateway: String, scope: RouteScope, build: () -> [Route]) -> [Route] {
        let key = Key(virtualService: resource.key, gateway: gateway, port: scope.port, proxyNamespace: scope.proxyNamespace)
        let remembered = entries.withLock { entries -> [Route]? in
            guard let known = entries[key] ?? carried[key], known.resource.hasSameContent(as: resource) else { return nil }
            entries[key] = known
            return known.routes
        }
        if let remembered { return remembered }
        let routes = build()
        entries.withLock { $0[key] = Entry(resource: resource, routes: routes) }
        return routes
    }

    /// Whether `before` and `now` are the same VirtualServices in the same order (their contents
    /// may differ): what was kept per position still lines up.
    static func sameVirtualServicesInOrder(_ before: [ConfigResource], _ now: [ConfigResource]) -> Bool {
        before.count == now.count && zip(before, now).allSatisfy { $0.key == $1.key }
    }
}

/// How one route configuration was assembled from the VirtualServices bound to its servers, kept
/// so that the next generation assembles it again from the VirtualServices that changed: their
/// hosts are the only ones whose virtual hosts can differ.
struct RouteAssembly: Sendable {
    /// A host a VirtualService gives routes: through which gateway, which routes, and whether its
    /// server redirects plain HTTP to HTTPS.
    struct Binding: Sendable, Equatable {
        var host: String
        var gateway: String
        var routes: [Route]
        var redirectsToTLS: Bool
    }

    /// A host's virtual host with what it was built from: the contributing VirtualServices (and the
    /// TLS redirect) as named in its content, and the routes each gave it.
    struct Host: Sendable {
        var content: String
        var contributions: [[Route]]
        var virtualHost: VirtualHost
    }

    init(servers: [GatewayServers.Entry]) {
        self.servers = servers
    }

    var servers: [GatewayServers.Entry]
    /// The VirtualServices visible to the proxy namespace, in Istio order, as assembled.
    var virtualServices: [ConfigResource] = []
    /// What each of ``virtualServices`` binds, by position.
    var bindings: [[Binding]] = []
    /// Per host, the positions of the VirtualServices that bind it, ascending.
    var users: [String: [Int]] = [:]
    private(set) var hosts: [String: Host] = [:]
    var sortedHosts: [String] = []
    /// How many hosts have each content, and how many contents more than one host has: with
    /// none, no two virtual hosts collapse into one.
    private var contentCounts: [String: Int] = [:]
    private(set) var sharedContents = 0

    /// Sets (or, with nil, removes) a host's virtual host; true when the set of hosts changed.
    mutating func setHost(_ host: String, _ entry: Host?) -> Bool {
        let old = entry.map { hosts.updateValue($0, forKey: host) } ?? hosts.removeValue(forKey: host)
        if let old { count(old.content, -1) }
        if let entry { count(entry.content, 1) }
        return (old == nil) != (entry == nil)
    }

    private mutating func count(_ content: String, _ delta: Int) {
        let before = contentCounts[content] ?? 0, after = before + delta
        if before < 2, after >= 2 { sharedContents += 1 } else if before >= 2, after < 2 { sharedContents -= 1 }
        contentCounts[content] = after == 0 ? nil : after
    }

    /// Whether `servers` are the servers this assembly was made for (their gateways and specs).
    func isFor(_ servers: [GatewayServers.Entry]) -> Bool {
        self.servers.count == servers.count && zip(self.servers, servers).allSatisfy { old, new in
            old.gateway == new.gateway && old.kind == new.kind && old.server == new.server
        }
    }
}
