import Mesh
import Translation
import Snapshot

/// Which Istio objects produced an Envoy resource, so a rejected resource can be traced back to
/// the config a user wrote.
public enum Provenance {
    public static func sources(of type: XDSType, name: String, for proxy: Proxy, in model: MeshModel) -> Set<ConfigKey> {
        switch type {
        case .cluster, .endpoint:
            guard let parts = Names.outboundClusterParts(name) else { return [] }
            return serviceSources(host: parts.host, proxy: proxy, model: model)
        case .listener:
            guard let port = name.split(separator: "_").last.flatMap({ UInt32($0) }) else { return [] }
            return Set(gateways(port: port, proxy: proxy, model: model))
        case .route:
            let parts = name.split(separator: ".")
            guard parts.count >= 2, let port = UInt32(parts[1]) else { return [] }
            let bound = gateways(port: port, proxy: proxy, model: model)
            var keys = Set(bound)
            let boundNames = Set(bound.map(\.resourceName))
            for resource in model.virtualServices {
                guard case .virtualService(let service) = resource.spec else { continue }
                let names = service.gateways.map { resolveGatewayReference($0, namespace: resource.key.namespace) }
                if names.contains(where: boundNames.contains) { keys.insert(resource.key) }
            }
            return keys
        case .virtualHost:
            // `<route configuration>/<host>:<port>`: the route configuration's gateways, and the
            // VirtualServices that name the host.
            guard let (routeConfiguration, entry) = Names.splitDiscoveredVirtualHost(name) else { return [] }
            let host = entry.split(separator: ":").first.map(String.init) ?? entry
            return sources(of: .route, name: routeConfiguration, for: proxy, in: model).filter { key in
                guard let resource = model.virtualServices.first(where: { $0.key == key }),
                      case .virtualService(let service) = resource.spec else { return true }
                return service.hosts.contains(host)
            }
        }
    }

    /// The sources of every resource in `names`; when the proxy's error message names some of them,
    /// only those.
    public static func sources(of type: XDSType, names: [String], message: String, for proxy: Proxy, in model: MeshModel) -> [ConfigKey] {
        let mentioned = names.filter { message.contains($0) }
        let blamed = mentioned.isEmpty ? names : mentioned
        return blamed.reduce(into: Set<ConfigKey>()) { $0.formUnion(sources(of: type, name: $1, for: proxy, in: model)) }.sorted()
    }

    static func serviceSources(host: String, proxy: Proxy, model: MeshModel) -> Set<ConfigKey> {
        var keys: Set<ConfigKey> = []
        if let service = model.services[host] {
            keys.insert(service.source)
            if let rule = model.destinationRuleResource(host: host, proxyNamespace: proxy.namespace, serviceNamespace: service.namespace) {
                keys.insert(rule.key)
            }
        }
        return keys
    }

    static func gateways(port: UInt32, proxy: Proxy, model: MeshModel) -> [ConfigKey] {
        model.gateways(for: proxy).compactMap { resource in
            guard case .gateway(let gateway) = resource.spec, gateway.servers.contains(where: { $0.port.number == port }) else { return nil }
            return resource.key
        }
    }
}
