import IstioAPI
import EnvoyAPI
import Foundation
import Mesh
import Snapshot
import SwiftProtobuf

typealias Route = Envoy_Config_Route_V3_Route
typealias RouteAction = Envoy_Config_Route_V3_RouteAction
typealias RouteMatch = Envoy_Config_Route_V3_RouteMatch
typealias VirtualHost = Envoy_Config_Route_V3_VirtualHost
typealias StringMatcher = Envoy_Type_Matcher_V3_StringMatcher
typealias HeaderMatcher = Envoy_Config_Route_V3_HeaderMatcher

/// What route translation reads besides the VirtualService: the model, the namespace of the proxy
/// asking (DestinationRule lookup), and the listener port; and where routes built before are kept.
struct RouteScope {
    var model: MeshModel
    var proxyNamespace: String
    var port: UInt32
    var memo: RouteMemo?
}

/// Builds gateway RouteConfigurations (`http.<port>`) from the VirtualServices bound to each server.
public enum RouteBuilder {
    /// Route configurations of a router: `http.<port>[.<bind>]` per plaintext HTTP address, then
    /// `https.<port>.<portName>.<gateway>.<namespace>` per TLS-terminated HTTPS server.
    /// - Parameter memo: routes of VirtualServices translated before, reused while they hold.
    public static func gatewayRoutes(_ servers: GatewayServers, for proxy: Proxy, in model: MeshModel, memo: RouteMemo? = nil) -> [RouteConfiguration] {
        let http = servers.httpByAddress
        let plain = http.keys.sorted().map { address in
            routeConfiguration(name: address.httpRouteName, servers: http[address] ?? [],
                               scope: RouteScope(model: model, proxyNamespace: proxy.namespace, port: address.port, memo: memo))
        }
        var seen = Set(plain.map(\.name))
        let secure = servers.httpsServers.filter { seen.insert($0.httpsRouteName).inserted }.map { entry in
            routeConfiguration(name: entry.httpsRouteName, servers: [entry],
                               scope: RouteScope(model: model, proxyNamespace: proxy.namespace, port: entry.server.port.number, memo: memo))
        }
        return plain + secure
    }

    /// One route configuration: a virtual host per bound host name, VS routes merged by host in VS
    /// order; when nothing binds, the `blackhole:<port>` vhost so Envoy answers 404.
    static func routeConfiguration(name: String, servers: [GatewayServers.Entry], scope: RouteScope) -> RouteConfiguration {
        let port = scope.port
        let virtualServices = scope.model.virtualServices(visibleTo: scope.proxyNamespace)
        let key = RouteMemo.AssemblyKey(name: name, proxyNamespace: scope.proxyNamespace, gateways: servers.map(\.gateway))
        let previous = scope.memo?.assembly(key).flatMap { $0.isFor(servers) ? $0 : nil }
        var assembly: RouteAssembly
        /// Positions of the VirtualServices whose bindings are derived again.
        var changed: [Int] = []
        /// When the assembly starts afresh: the hosts built before, which a host bound again may
        /// keep, and what each VirtualService bound before, which one that kept its content keeps.
        var reusable: [String: RouteAssembly.Host] = [:]
        var earlier: [ConfigKey: (ConfigResource, [RouteAssembly.Binding])] = [:]
        let fresh: Bool
        if let previous, RouteMemo.sameVirtualServicesInOrder(previous.virtualServices, virtualServices) {
            // The same VirtualServices in the same order: those whose content changed bind again,
            // and those with delegates (their routes follow other VirtualServices).
            assembly = previous
            fresh = false
            for (position, resource) in virtualServices.enumerated() {
                let before = previous.virtualServices[position]
                if !before.hasSameContent(as: resource) || hasDelegates(resource) { changed.append(position) }
            }
        } else {
            // Added, removed or reordered: every position binds again, a VirtualService that kept
            // its content from what it bound before.
            assembly = RouteAssembly(servers: servers)
            assembly.bindings = Array(repeating: [], count: virtualServices.count)
            changed = Array(virtualServices.indices)
            fresh = true
            if let previous {
                reusable = previous.hosts
                for (resource, bindings) in zip(previous.virtualServices, previous.bindings) { earlier[resource.key] = (resource, bindings) }
            }
        }
        assembly.virtualServices = virtualServices
        var touched = Set<String>()
        for position in changed {
            let resource = virtualServices[position]
            let bindings: [RouteAssembly.Binding]
            if let (known, knownBindings) = earlier[resource.key], known.hasSameContent(as: resource), !hasDelegates(resource) {
                bindings = knownBindings
            } else {
                bindings = self.bindings(of: resource, servers: servers, scope: scope)
            }
            let old = assembly.bindings[position]
            guard bindings != old else { continue }
            for binding in old {
                assembly.users[binding.host]?.removeAll { $0 == position }
                touched.insert(binding.host)
            }
            for binding in bindings {
                var users = assembly.users[binding.host] ?? []
                users.insert(position, at: users.firstIndex { $0 > position } ?? users.endIndex)
                assembly.users[binding.host] = users
                touched.insert(binding.host)
            }
            assembly.bindings[position] = bindings
        }
        var hostsChanged = fresh
        for host in touched {
            guard let users = assembly.users[host], !users.isEmpty else {
                assembly.users[host] = nil
                if assembly.setHost(host, nil) { hostsChanged = true }
                continue
            }
            let contributing = users.map { position in
                (resource: virtualServices[position], binding: assembly.bindings[position].first { $0.host == host }!)
            }
            let redirectsToTLS = contributing.contains { $0.binding.redirectsToTLS }
            // Which VirtualServices (and gateways) gave the host its routes, in order: routes do not
            // depend on the host and carry their VirtualService in their metadata, so hosts with the
            // same content have identical virtual hosts (collapsed into one below), others do not.
            let content = contributing.map { "\($0.resource.key.resourceName)@\($0.binding.gateway)" }.joined(separator: ",")
                + (redirectsToTLS ? ";tls" : "")
            let contributions = contributing.map(\.binding.routes)
            // A virtual host is its host, port, content and routes: one built from equal ones is the same.
            if let known = assembly.hosts[host], known.content == content, known.contributions == contributions { continue }
            if let known = reusable[host], known.content == content, known.contributions == contributions {
                if assembly.setHost(host, known) { hostsChanged = true }
                continue
            }
            var virtualHost = VirtualHost()
            virtualHost.name = Names.virtualHost(host: host, port: port)
            virtualHost.domains = [host]
            virtualHost.routes = sortCatchAllLast(contributions.flatMap { $0 })
            hoistSharedRetryPolicy(&virtualHost)
            virtualHost.includeRequestAttemptCount = true
            if redirectsToTLS { virtualHost.requireTls = .all }
            if assembly.setHost(host, RouteAssembly.Host(content: content, contributions: contributions, virtualHost: virtualHost)) {
                hostsChanged = true
            }
            scope.memo?.builtHosts.withLock { $0.append(host) }
        }
        if hostsChanged { assembly.sortedHosts = assembly.hosts.keys.sorted() }
        scope.memo?.remember(assembly, as: key)

        var configuration = RouteConfiguration()
        configuration.name = name
        configuration.validateClusters = Google_Protobuf_BoolValue(false)
        configuration.ignorePortInHostMatching = true
        configuration.maxDirectResponseBodySizeBytes = Google_Protobuf_UInt32Value(1_048_576)
        let built = assembly.sortedHosts.map { assembly.hosts[$0]! }
        configuration.virtualHosts = assembly.sharedContents == 0 ? built.map(\.virtualHost)
            : collapsingIdenticalRoutes(contents: built.map(\.content), built.map(\.virtualHost))
        if configuration.virtualHosts.isEmpty {
            var blackhole = VirtualHost()
            blackhole.name = Names.virtualHost(host: "blackhole", port: port)
            blackhole.domains = ["*"]
            configuration.virtualHosts = [blackhole]
        }
        return configuration
    }

    /// The hosts a VirtualService gives routes on `servers`, each once, with the routes of the first
    /// server's gateway that binds it (a host bound there with no routes for that gateway gets none).
    static func bindings(of resource: ConfigResource, servers: [GatewayServers.Entry], scope: RouteScope) -> [RouteAssembly.Binding] {
        guard case .virtualService(let service) = resource.spec else { return [] }
        // Routes are built per gateway (rules may match on `gateways`).
        var routesForGateway: [String: [Route]] = [:]
        var bound = Set<String>()
        var bindings: [RouteAssembly.Binding] = []
        for entry in servers {
            let gateway = entry.gateway.resourceName
            for host in entry.boundHosts(of: service, namespace: resource.key.namespace) where bound.insert(host).inserted {
                if routesForGateway[gateway] == nil {
                    routesForGateway[gateway] = memoizedHTTPRoutes(for: service, resource: resource, gateway: gateway, scope: scope)
                }
                // A VS with only tcp/tls rules (or none left for this gateway) adds no virtual host.
                guard let routes = routesForGateway[gateway], !routes.isEmpty else { continue }
                bindings.append(RouteAssembly.Binding(host: host, gateway: gateway, routes: routes, redirectsToTLS: entry.server.tls.httpsRedirect))
            }
        }
        return bindings
    }

    /// Whether a VirtualService delegates rules: its routes follow the delegates' content too.
    static func hasDelegates(_ resource: ConfigResource) -> Bool {
        guard case .virtualService(let service) = resource.spec else { return false }
        return hasDelegates(service)
    }

    static func hasDelegates(_ service: VirtualService) -> Bool {
        service.http.contains(where: \.hasDelegate)
    }

    /// Virtual hosts identical but for name and domains become one, named after the first, with
    /// the domains of all (Istio's route collapse, on by default). `contents[i]` identifies the
    /// content of `hosts[i]` apart from name and domains.
    static func collapsingIdenticalRoutes(contents: [String], _ hosts: [VirtualHost]) -> [VirtualHost] {
        var collapsed: [VirtualHost] = []
        var indexByContent: [String: Int] = [:]
        for (content, host) in zip(contents, hosts) {
            if let index = indexByContent[content] {
                collapsed[index].domains += host.domains
            } else {
                indexByContent[content] = collapsed.count
                collapsed.append(host)
            }
        }
        return collapsed
    }

    /// Moves the retry policy that every forwarding route of `host` carries to the virtual host.
    ///
    /// Envoy applies a virtual host's retry policy to each route without one of its own, and a
    /// route's own policy replaces it whole; redirect and direct-response routes never retry. So when
    /// all forwarding routes carry the same policy (Istio's default, most often), sending it once
    /// changes nothing in Envoy and saves about 220 bytes per route in every route configuration
    /// and virtual host pushed. A host whose routes differ (one without retries, one with its own)
    /// keeps every policy on its route.
    static func hoistSharedRetryPolicy(_ host: inout VirtualHost) {
        var shared: Envoy_Config_Route_V3_RetryPolicy?
        for route in host.routes {
            guard case .route(let action) = route.action else { continue }
            guard action.hasRetryPolicy else { return }
            if let shared {
                if action.retryPolicy != shared { return }
            } else {
                shared = action.retryPolicy
            }
        }
        guard let shared else { return }
        for index in host.routes.indices where host.routes[index].route.hasRetryPolicy {
            host.routes[index].route.clearRetryPolicy()
        }
        host.retryPolicy = shared
    }

    /// `name` → `<vsNamespace>/name`, `ns/name` stays, `./name` → VS namespace.
    static func gatewayName(_ reference: String, namespace: String) -> String {
        resolveGatewayReference(reference, namespace: namespace)
    }

    /// Catch-all routes (prefix `/` with no other matchers) move to the end, order otherwise kept.
    static func sortCatchAllLast(_ routes: [Route]) -> [Route] {
        routes.filter { !isCatchAll($0) } + routes.filter(isCatchAll)
    }

    static func isCatchAll(_ route: Route) -> Bool {
        let match = route.match
        guard match.headers.isEmpty, match.queryParameters.isEmpty else { return false }
        switch match.pathSpecifier {
        case .prefix(let prefix): return prefix == "/"
        case .pathSeparatedPrefix(let prefix): return prefix == "/"
        case .safeRegex(let regex): return regex.regex == ".*"
        default: return false
        }
    }

    // MARK: - HTTP routes

    /// ``httpRoutes(for:resource:gateway:scope:)`` through the scope's memo, except for a
    /// VirtualService with delegates, whose routes depend on other VirtualServices.
    static func memoizedHTTPRoutes(for service: VirtualService, resource: ConfigResource, gateway: String, scope: RouteScope) -> [Route] {
        guard let memo = scope.memo, !hasDelegates(service) else {
            return httpRoutes(for: service, resource: resource, gateway: gateway, scope: scope)
        }
        return memo.routes(of: resource, gateway: gateway, scope: scope) {
            httpRoutes(for: service, resource: resource, gateway: gateway, scope: scope)
        }
    }

    /// Envoy routes of one VirtualService for a gateway and port (Istio §4.1 algorithm).
    static func httpRoutes(for service: VirtualService, resource: ConfigResource, gateway: String, scope: RouteScope) -> [Route] {
        let port = scope.port
        var routes: [Route] = []
        for sourced in expandedRules(of: service, resource: resource, in: scope.model) where hasAction(sourced.rule) {
            let rule = sourced.rule
            let matches = rule.match.isEmpty ? [nil] : rule.match.map(Optional.some)
            for match in matches {
                if let match {
                    if match.port != 0, match.port != port { continue }
                    if !match.gateways.isEmpty, !match.gateways.map({ gatewayName($0, namespace: resource.key.namespace) }).contains(gateway) { continue }
                }
                let route = translate(rule, match: match, resource: sourced.source, scope: scope)
                routes.append(route)
                if isCatchAll(route) { return routes }
            }
        }
        return routes
    }

    static func translate(_ rule: Istio_Networking_V1alpha3_HTTPRoute, match: Istio_Networking_V1alpha3_HTTPMatchRequest?,
                          resource: ConfigResource, scope: RouteScope) -> Route {
        var route = Route()
        route.name = [rule.name, match?.name ?? ""].filter { !$0.isEmpty }.joined(separator: ".")
        route.match = routeMatch(match)
        if let match, !match.statPrefix.isEmpty { route.statPrefix = match.statPrefix }
        var metadata = Google_Protobuf_Struct()
        metadata.fields["config"] = Google_Protobuf_Value(stringValue: "/apis/networking.istio.io/v1/namespaces/\(resource.key.namespace)/virtual-service/\(resource.key.name)")
        route.metadata.filterMetadata["istio"] = metadata
        if rule.hasRedirect {
            route.redirect = redirect(rule.redirect, port: scope.port)
        } else if rule.hasDirectResponse {
            var direct = Envoy_Config_Route_V3_DirectResponseAction()
            direct.status = rule.directResponse.status
            if rule.directResponse.hasBody {
                var body = Envoy_Config_Core_V3_DataSource()
                switch rule.directResponse.body.specifier {
                case .string(let text): body.inlineString = text
                case .bytes(let bytes): body.inlineBytes = bytes
                case nil: break
                }
                direct.body = body
            }
            route.directResponse = direct
        } else {
            route.route = action(rule, resource: resource, scope: scope)
        }
        applyHeaders(rule.headers, to: &route)
        let destinations = activeDestinations(rule)
        if case .route = route.action, destinations.count == 1, destinations[0].hasHeaders {
            applyHeaders(destinations[0].headers, to: &route)
        }
        if rule.hasFault, let fault = fault(rule.fault) {
            route.typedPerFilterConfig["envoy.filters.http.fault"] = Packing.any(fault)
        }
        if rule.hasCorsPolicy {
            route.typedPerFilterConfig["envoy.filters.http.cors"] = Packing.any(corsPolicy(rule.corsPolicy))
        }
        return route
    }

    static func routeMatch(_ match: Istio_Networking_V1alpha3_HTTPMatchRequest?) -> RouteMatch {
        var result = RouteMatch()
        guard let match else {
            result.prefix = "/"
            return result
        }
        switch match.uri.matchType {
        case .exact(let path): result.path = path
        case .prefix(let prefix): result.prefix = prefix
        case .regex(let regex): result.safeRegex = regexMatcher(regex)
        case nil: result.prefix = "/"
        }
        result.caseSensitive = Google_Protobuf_BoolValue(!match.ignoreUriCase)
        var headers: [HeaderMatcher] = []
        for (name, value) in match.headers { headers.append(headerMatcher(name, value, invert: false)) }
        for (name, value) in match.withoutHeaders { headers.append(headerMatcher(name, value, invert: true)) }
        if match.hasMethod { headers.append(headerMatcher(":method", match.method, invert: false)) }
        if match.hasAuthority { headers.append(headerMatcher(":authority", match.authority, invert: false)) }
        if match.hasScheme { headers.append(headerMatcher(":scheme", match.scheme, invert: false)) }
        result.headers = headers.sorted { ($0.name, $0.invertMatch ? 1 : 0) < ($1.name, $1.invertMatch ? 1 : 0) }
        result.queryParameters = match.queryParams.keys.sorted().map { name in
            var matcher = Envoy_Config_Route_V3_QueryParameterMatcher()
            matcher.name = name
            let value = match.queryParams[name]!
            if isPresenceMatch(value) {
                matcher.presentMatch = true
            } else {
                matcher.stringMatch = stringMatcher(value)
            }
            return matcher
        }
        return result
    }

    static func isPresenceMatch(_ match: Istio_Networking_V1alpha3_StringMatch) -> Bool {
        switch match.matchType {
        case nil: true
        case .regex(let regex): regex == "*"
        default: false
        }
    }

    static func headerMatcher(_ name: String, _ value: Istio_Networking_V1alpha3_StringMatch, invert: Bool) -> HeaderMatcher {
        var matcher = HeaderMatcher()
        matcher.name = name
        matcher.invertMatch = invert
        if isPresenceMatch(value) {
            matcher.presentMatch = true
        } else {
            matcher.stringMatch = stringMatcher(value)
            if invert { matcher.treatMissingHeaderAsEmpty = true }
        }
        return matcher
    }

    static func stringMatcher(_ match: Istio_Networking_V1alpha3_StringMatch) -> StringMatcher {
        var matcher = StringMatcher()
        switch match.matchType {
        case .exact(let value): matcher.exact = value
        case .prefix(let value): matcher.prefix = value
        case .regex(let value): matcher.safeRegex = regexMatcher(value)
        case nil: break
        }
        return matcher
    }

    static func regexMatcher(_ regex: String) -> Envoy_Type_Matcher_V3_RegexMatcher {
        var matcher = Envoy_Type_Matcher_V3_RegexMatcher()
        matcher.regex = regex
        return matcher
    }

    // MARK: - Actions

    static func action(_ rule: Istio_Networking_V1alpha3_HTTPRoute, resource: ConfigResource, scope: RouteScope) -> RouteAction {
        let (model, port) = (scope.model, scope.port)
        var action = RouteAction()
        let destinations = activeDestinations(rule)
        if destinations.count == 1 {
            action.cluster = clusterName(destinations[0].destination, namespace: resource.key.namespace, port: port, in: model)
        } else {
            var weighted = Envoy_Config_Route_V3_WeightedCluster()
            weighted.clusters = destinations.map { destination in
                var cluster = Envoy_Config_Route_V3_WeightedCluster.ClusterWeight()
                cluster.name = clusterName(destination.destination, namespace: resource.key.namespace, port: port, in: model)
                cluster.weight = Google_Protobuf_UInt32Value(UInt32(destination.weight))
                if destination.hasHeaders {
                    let ops = headerOperations(destination.headers)
                    cluster.requestHeadersToAdd = ops.requestAdd
                    cluster.requestHeadersToRemove = ops.requestRemove
                    cluster.responseHeadersToAdd = ops.responseAdd
                    cluster.responseHeadersToRemove = ops.responseRemove
                    if let host = ops.hostRewrite { cluster.hostRewriteLiteral = host }
                }
                return cluster
            }
            action.weightedClusters = weighted
        }
        if rule.hasRewrite {
            if !rule.rewrite.uri.isEmpty { action.prefixRewrite = rule.rewrite.uri }
            if rule.rewrite.hasUriRegexRewrite {
                var rewrite = Envoy_Type_Matcher_V3_RegexMatchAndSubstitute()
                rewrite.pattern = regexMatcher(rule.rewrite.uriRegexRewrite.match)
                rewrite.substitution = rule.rewrite.uriRegexRewrite.rewrite
                action.regexRewrite = rewrite
            }
            if !rule.rewrite.authority.isEmpty { action.hostRewriteLiteral = rule.rewrite.authority }
        }
        // Istio's default: no route timeout (Envoy's own default would be 15 s).
        action.timeout = rule.hasTimeout ? rule.timeout : Google_Protobuf_Duration(seconds: 0)
        action.hashPolicy = hashPolicy(for: destinations.map(\.destination), namespace: resource.key.namespace, scope: scope)
        action.requestMirrorPolicies = mirrorPolicies(rule, namespace: resource.key.namespace, scope: scope)
        if var retry = retryPolicy(rule) {
            // Consistent hashing pins a host; retrying elsewhere would defeat it.
            if !action.hashPolicy.isEmpty { retry.retryHostPredicate = [] }
            action.retryPolicy = retry
        }
        return action
    }

    /// The destinations that receive traffic: a single destination whatever its weight, else those
    /// with a weight above 0 (Istio drops weight-0 entries).
    static func activeDestinations(_ rule: Istio_Networking_V1alpha3_HTTPRoute) -> [Istio_Networking_V1alpha3_HTTPRouteDestination] {
        rule.route.count == 1 ? rule.route : rule.route.filter { $0.weight > 0 }
    }

    /// Whether a rule can become an Envoy route: it redirects, responds directly, or has a destination
    /// with traffic (a rule with only weight-0 destinations is invalid in Istio and is not emitted).
    static func hasAction(_ rule: Istio_Networking_V1alpha3_HTTPRoute) -> Bool {
        rule.hasRedirect || rule.hasDirectResponse || !activeDestinations(rule).isEmpty
    }

    /// `outbound|P|subset|host`: P = destination port, else the service's only port, else the listener port.
    static func clusterName(_ destination: Istio_Networking_V1alpha3_Destination, namespace: String, port: UInt32, in model: MeshModel) -> String {
        let host = Names.fullyQualified(destination.host, namespace: namespace)
        let number = clusterPort(destination, service: model.services[host], listenerPort: port)
        return Names.outboundCluster(port: number, subset: destination.subset, host: host)
    }

    /// Destination port, else the service's only port, else the listener port.
    static func clusterPort(_ destination: Istio_Networking_V1alpha3_Destination, service: Service?, listenerPort: UInt32) -> UInt32 {
        if destination.port.number != 0 { return destination.port.number }
        if let service, service.ports.count == 1 { return service.ports[0].number }
        return listenerPort
    }

    /// Istio's retry policy for a rule without `retries`: one value, so that every route carrying it
    /// shares its storage (and comparing two of them is comparing two references).
    static let istioDefaultRetryPolicy: Envoy_Config_Route_V3_RetryPolicy = {
        var policy = Envoy_Config_Route_V3_RetryPolicy()
        policy.hostSelectionRetryMaxAttempts = 5
        policy.retryHostPredicate = [previousHostsPredicate]
        policy.numRetries = Google_Protobuf_UInt32Value(2)
        policy.retryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
        return policy
    }()

    /// Retry on another host than the ones tried: Istio's default, unless `retryIgnorePreviousHosts: false`.
    static let previousHostsPredicate: Envoy_Config_Route_V3_RetryPolicy.RetryHostPredicate = {
        var predicate = Envoy_Config_Route_V3_RetryPolicy.RetryHostPredicate()
        predicate.name = "envoy.retry_host_predicates.previous_hosts"
        predicate.typedConfig = Packing.any(Envoy_Extensions_Retry_Host_PreviousHosts_V3_PreviousHostsPredicate())
        return predicate
    }()

    static func retryPolicy(_ rule: Istio_Networking_V1alpha3_HTTPRoute) -> Envoy_Config_Route_V3_RetryPolicy? {
        guard rule.hasRetries else { return istioDefaultRetryPolicy }
        var policy = Envoy_Config_Route_V3_RetryPolicy()
        policy.hostSelectionRetryMaxAttempts = 5
        policy.retryHostPredicate = [previousHostsPredicate]
        let retries = rule.retries
        if retries.attempts <= 0 { return nil }
        policy.numRetries = Google_Protobuf_UInt32Value(UInt32(retries.attempts))
        var conditions: [String] = []
        for item in retries.retryOn.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if let code = UInt32(item) { policy.retriableStatusCodes.append(code) } else { conditions.append(item) }
        }
        if conditions.isEmpty, retries.retryOn.isEmpty {
            conditions = ["connect-failure", "refused-stream", "unavailable", "cancelled"]
        }
        if !policy.retriableStatusCodes.isEmpty || conditions.isEmpty || retries.retryOn.isEmpty, !conditions.contains("retriable-status-codes") {
            conditions.append("retriable-status-codes")
        }
        policy.retryOn = conditions.joined(separator: ",")
        if retries.hasPerTryTimeout { policy.perTryTimeout = retries.perTryTimeout }
        if retries.hasRetryIgnorePreviousHosts, !retries.retryIgnorePreviousHosts.value { policy.retryHostPredicate = [] }
        if retries.hasBackoff {
            var backOff = Envoy_Config_Route_V3_RetryPolicy.RetryBackOff()
            backOff.baseInterval = retries.backoff
            policy.retryBackOff = backOff
        }
        return policy
    }

    static func redirect(_ redirect: Istio_Networking_V1alpha3_HTTPRedirect, port: UInt32) -> Envoy_Config_Route_V3_RedirectAction {
        var action = Envoy_Config_Route_V3_RedirectAction()
        if !redirect.authority.isEmpty { action.hostRedirect = redirect.authority }
        if !redirect.uri.isEmpty { action.pathRedirect = redirect.uri }
        if !redirect.scheme.isEmpty { action.schemeRedirect = redirect.scheme }
        var redirectPort: UInt32 = 0
        switch redirect.redirectPort {
        case .port(let number): redirectPort = number
        case .derivePort(let selection) where selection == .fromRequestPort: redirectPort = port
        default: break
        }
        // The scheme's default port is left out of the Location (80 for http, 443 for https).
        let scheme = redirect.scheme.lowercased()
        let isDefault = (redirectPort == 80 && scheme != "https") || (redirectPort == 443 && scheme == "https")
        if redirectPort != 0, !isDefault { action.portRedirect = redirectPort }
        switch redirect.redirectCode {
        case 302: action.responseCode = .found
        case 303: action.responseCode = .seeOther
        case 307: action.responseCode = .temporaryRedirect
        case 308: action.responseCode = .permanentRedirect
        default: action.responseCode = .movedPermanently
        }
        return action
    }
}

extension Google_Protobuf_Value {
    init(stringValue: String) {
        self.init()
        self.kind = .stringValue(stringValue)
    }
}
