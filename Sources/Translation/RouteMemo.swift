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

    /// A virtual host of a route configuration, by host, port and proxy namespace.
    struct HostKey: Hashable {
        var host: String
        var port: UInt32
        var proxyNamespace: String
    }

    /// A virtual host as built, with what it was built from: the contributing VirtualServices (and
    /// the TLS redirect) as named in its content, and the routes each gave it.
    struct HostEntry: Sendable {
        var content: String
        var contributions: [[Route]]
        var virtualHost: VirtualHost
    }

    private let carriedHosts: [HostKey: HostEntry]
    private let hosts = Mutex<[HostKey: HostEntry]>([:])

    /// - Parameter previous: the memo of the generation before, when nothing but VirtualServices,
    ///   Gateways or endpoints changed since; nil starts empty.
    public init(carrying previous: RouteMemo? = nil) {
        carried = previous?.entries.withLock { $0 } ?? [:]
        carriedHosts = previous?.hosts.withLock { $0 } ?? [:]
    }

    /// The virtual host of `host` built by `build`, or the one built before from the same
    /// contributions. A virtual host is its host, port, content and routes, so one built from equal
    /// routes is the same (compared as arrays: routes kept by this memo compare by their storage).
    func virtualHost(host: String, port: UInt32, proxyNamespace: String, content: String, contributions: [[Route]],
                     build: () -> VirtualHost) -> VirtualHost {
        let key = HostKey(host: host, port: port, proxyNamespace: proxyNamespace)
        let remembered = hosts.withLock { hosts -> VirtualHost? in
            guard let known = hosts[key] ?? carriedHosts[key], known.content == content, known.contributions == contributions else { return nil }
            hosts[key] = known
            return known.virtualHost
        }
        if let remembered { return remembered }
        let virtualHost = build()
        hosts.withLock { $0[key] = HostEntry(content: content, contributions: contributions, virtualHost: virtualHost) }
        return virtualHost
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
}
