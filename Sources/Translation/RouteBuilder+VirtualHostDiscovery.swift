import EnvoyAPI

/// Virtual Host Discovery (VHDS): a route configuration served without its virtual hosts, which
/// travel as separate `VirtualHost` resources so a change to one host sends that host alone.
///
/// Envoy keys the virtual hosts it received over VHDS by `VirtualHost.name` and deletes them by the
/// names in `removed_resources`, so a virtual host's name *is* its resource name:
/// `<route configuration name>/<virtual host name>` (the docs' `<route configuration name>/<host entry>`;
/// the prefix is also how Envoy routes a virtual host to the route configuration that owns it).
extension RouteBuilder {
    /// A route configuration split for VHDS.
    public struct VirtualHostDiscovery: Sendable, Equatable {
        /// The configuration with no inline virtual hosts (Envoy merges inline and VHDS hosts, and
        /// two hosts claiming one domain would be rejected) and `vhds` over ADS.
        public var routeConfiguration: RouteConfiguration
        /// Its virtual hosts, each named `<route configuration>/<virtual host>`.
        public var virtualHosts: [Envoy_Config_Route_V3_VirtualHost]
    }

    /// Splits a route configuration into the VHDS route configuration and its virtual hosts.
    public static func virtualHostDiscovery(_ configuration: RouteConfiguration) -> VirtualHostDiscovery {
        VirtualHostDiscovery(routeConfiguration: discoveredRouteConfiguration(configuration),
                             virtualHosts: configuration.virtualHosts.map { discoveredVirtualHost($0, of: configuration) })
    }

    /// The configuration as VHDS serves it: no inline virtual hosts, `vhds` over ADS.
    public static func discoveredRouteConfiguration(_ configuration: RouteConfiguration) -> RouteConfiguration {
        var route = configuration
        route.virtualHosts = []
        var vhds = Envoy_Config_Route_V3_Vhds()
        var source = Envoy_Config_Core_V3_ConfigSource()
        source.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        source.resourceApiVersion = .v3
        vhds.configSource = source
        route.vhds = vhds
        return route
    }

    /// One of the configuration's virtual hosts as a VHDS resource: named `<route configuration>/<virtual host>`.
    public static func discoveredVirtualHost(_ host: Envoy_Config_Route_V3_VirtualHost, of configuration: RouteConfiguration) -> Envoy_Config_Route_V3_VirtualHost {
        var named = host
        named.name = Names.discoveredVirtualHost(routeConfiguration: configuration.name, virtualHost: host.name)
        return named
    }
}

extension Names {
    /// VHDS resource (and virtual host) name: `<route configuration>/<virtual host>`, e.g.
    /// `http.8080/reviews.example.com:8080`.
    public static func discoveredVirtualHost(routeConfiguration: String, virtualHost: String) -> String {
        "\(routeConfiguration)/\(virtualHost)"
    }

    /// The route configuration a VHDS resource name belongs to (`http.8080/a.example.com` → `http.8080`),
    /// and the host entry after it; nil when the name has no `/`.
    public static func splitDiscoveredVirtualHost(_ name: String) -> (routeConfiguration: String, host: String)? {
        guard let slash = name.firstIndex(of: "/") else { return nil }
        return (String(name[..<slash]), String(name[name.index(after: slash)...]))
    }
}
