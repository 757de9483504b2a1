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

    /// - Parameter previous: the memo of the generation before, when nothing but VirtualServices,
    ///   Gateways or endpoints changed since; nil starts empty.
    public init(carrying previous: RouteMemo? = nil) {
        carried = previous?.entries.withLock { $0 } ?? [:]
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
