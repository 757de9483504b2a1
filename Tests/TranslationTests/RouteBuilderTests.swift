import EnvoyAPI
import IstioAPI
import Mesh
import Testing
@testable import Translation

/// The routes of the one vhost a VirtualService (appended to `gatewayYAML`) yields on `http.8080`.
func gatewayRoutes(_ virtualServiceYAML: String) -> [Envoy_Config_Route_V3_Route] {
    let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + virtualServiceYAML))
    return routes(config).virtualHosts.first?.routes ?? []
}

/// The VirtualService `shop/reviews` for `reviews.example.com` on the gateway; `rules` are its
/// `http` list (YAML at column 0).
func reviewsHTTP(_ rules: String) -> String {
    """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews, namespace: shop}
    spec:
      hosts: [reviews.example.com]
      gateways: [istio-system/gw]
      http:

    """ + rules.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
}

@Suite struct RouteBuilderTests {
    @Test func singleDestinationHeadersApplyToTheRoute() {
        let routes = gatewayRoutes(reviewsHTTP("""
        - headers: {request: {set: {x-a: "1"}}}
          route:
          - destination: {host: reviews}
            headers: {request: {add: {x-single: "yes"}}, response: {set: {x-r: "2"}, remove: [x-gone]}}
        """))
        #expect(routes.count == 1)
        #expect(routes[0].requestHeadersToAdd.map(\.header.key) == ["x-a", "x-single"])
        #expect(routes[0].requestHeadersToAdd.map(\.appendAction) == [.overwriteIfExistsOrAdd, .appendIfExistsOrAdd])
        #expect(routes[0].responseHeadersToAdd.map(\.header.key) == ["x-r"])
        #expect(routes[0].responseHeadersToRemove == ["x-gone"])
    }

    @Test func destinationAuthorityHeaderBecomesHostRewriteUnlessTheRuleRewrites() {
        let routes = gatewayRoutes(reviewsHTTP("""
        - match: [{uri: {prefix: /a}}]
          route: [{destination: {host: reviews}, headers: {request: {set: {host: a.internal}}}}]
        - rewrite: {authority: rule.internal}
          route: [{destination: {host: reviews}, headers: {request: {set: {host: a.internal}}}}]
        """))
        #expect(routes.map(\.route.hostRewriteLiteral) == ["a.internal", "rule.internal"])
        #expect(routes.allSatisfy { $0.requestHeadersToAdd.isEmpty }, "host is never added as a header")
    }

    @Test func rulesWhoseDestinationsAllWeighZeroAreNotEmitted() {
        let routes = gatewayRoutes(reviewsHTTP("""
        - match: [{uri: {prefix: /zero}}]
          route:
          - {destination: {host: reviews, subset: v1}, weight: 0}
          - {destination: {host: reviews, subset: v2}, weight: 0}
        - route: [{destination: {host: reviews, subset: v1}, weight: 5}]
        """))
        #expect(routes.count == 1)
        #expect(routes[0].route.cluster == "outbound|9080|v1|reviews.shop.svc.cluster.local", "a lone destination takes all traffic")
    }

    @Test func redirectPortsLeaveOutTheSchemeDefault() {
        var https = Istio_Networking_V1alpha3_HTTPRedirect()
        https.scheme = "https"
        https.port = 443
        #expect(RouteBuilder.redirect(https, port: 8080).portRedirect == 0)
        https.port = 8443
        #expect(RouteBuilder.redirect(https, port: 8080).portRedirect == 8443)
        var derived = Istio_Networking_V1alpha3_HTTPRedirect()
        derived.derivePort = .fromRequestPort
        #expect(RouteBuilder.redirect(derived, port: 8080).portRedirect == 8080)
        #expect(RouteBuilder.redirect(derived, port: 80).portRedirect == 0)
        #expect(RouteBuilder.redirect(derived, port: 80).responseCode == .movedPermanently)
    }

    @Test func faultPercentagesArePerMillionAndAbsentMeansNone() {
        var fault = Istio_Networking_V1alpha3_HTTPFaultInjection()
        fault.abort.httpStatus = 500
        fault.abort.percentage.value = 12.5
        fault.delay.fixedDelay = .init(seconds: 2)
        let translated = RouteBuilder.fault(fault)!
        #expect(translated.abort.httpStatus == 500)
        #expect(translated.abort.percentage.numerator == 125_000)
        #expect(translated.abort.percentage.denominator == .million)
        #expect(translated.delay.fixedDelay.seconds == 2)
        #expect(translated.delay.percentage.numerator == 0, "no percentage → nothing delayed")
    }
}

@Suite struct RoutePolicyTests {
    @Test func mirrorsBecomeMirrorPoliciesAndZeroPercentIsDropped() {
        let routes = gatewayRoutes(reviewsHTTP("""
        - route: [{destination: {host: reviews, subset: v1}}]
          mirror: {host: reviews, subset: v2}
          mirrorPercentage: {value: 25.5}
          mirrors:
          - {destination: {host: reviews, subset: v1}}
          - {destination: {host: reviews, subset: v2}, percentage: {value: 0}}
        """))
        let mirrors = routes[0].route.requestMirrorPolicies
        #expect(mirrors.map(\.cluster) == [v2, v1])
        #expect(mirrors.map(\.runtimeFraction.defaultValue.numerator) == [255_000, 1_000_000])
        #expect(mirrors.allSatisfy { $0.disableShadowHostSuffixAppend && $0.hasTraceSampled && !$0.traceSampled.value })
    }

    @Test func corsPolicyIsPerRouteFilterConfig() throws {
        let routes = gatewayRoutes(reviewsHTTP("""
        - route: [{destination: {host: reviews}}]
          corsPolicy:
            allowOrigins: [{exact: "https://a.example"}, {prefix: "https://b."}]
            allowMethods: [GET, POST]
            allowHeaders: [x-a, x-b]
            exposeHeaders: [x-c]
            maxAge: 86400s
            allowCredentials: true
        """))
        let any = try #require(routes[0].typedPerFilterConfig["envoy.filters.http.cors"])
        #expect(any.typeURL == "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy")
        let cors = try Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy(serializedBytes: any.value)
        #expect(cors.allowOriginStringMatch.map(\.exact) == ["https://a.example", ""])
        #expect(cors.allowOriginStringMatch[1].prefix == "https://b.")
        #expect(cors.allowMethods == "GET,POST" && cors.allowHeaders == "x-a,x-b" && cors.exposeHeaders == "x-c")
        #expect(cors.maxAge == "86400")
        #expect(cors.allowCredentials.value && cors.forwardNotMatchingPreflights.value)
        #expect(cors.filterEnabled.defaultValue.numerator == 1_000_000)
    }

    @Test func delegateRulesReplaceTheRootRuleWithinItsMatch() {
        let routes = gatewayRoutes("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: root, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [istio-system/gw]
          http:
          - name: reviews
            match: [{uri: {prefix: /reviews}}]
            timeout: 3s
            delegate: {name: reviews-routes, namespace: team}
          - name: missing
            match: [{uri: {prefix: /missing}}]
            delegate: {name: nowhere}
          - route: [{destination: {host: reviews}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews-routes, namespace: team}
        spec:
          http:
          - name: v2
            match: [{uri: {prefix: /reviews/v2}, headers: {x-user: {exact: jason}}}, {uri: {prefix: /other}}]
            route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
          - name: rest
            route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
        """)
        #expect(routes.map(\.name) == ["reviews-v2", "reviews-rest", ""])
        #expect(routes[0].match.prefix == "/reviews/v2", "the delegate match narrows the root's; /other is outside it")
        #expect(routes[0].match.headers.map(\.name) == ["x-user"])
        #expect(routes[0].route.cluster == v2)
        #expect(routes[1].match.prefix == "/reviews", "a delegate rule without match takes the root's")
        #expect(routes[1].route.timeout.seconds == 3, "unset fields inherit from the root")
        #expect(routes[2].route.cluster == plain, "the rule whose delegate is missing is dropped, the rest stays")
    }
}

@Suite struct VirtualHostTests {
    @Test func hostsWithIdenticalRoutesCollapseIntoOneVirtualHost() {
        let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: both, namespace: shop}
        spec:
          hosts: [b.example.com, a.example.com]
          gateways: [istio-system/gw]
          http: [{route: [{destination: {host: reviews}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: c, namespace: shop}
        spec:
          hosts: [c.example.com]
          gateways: [istio-system/gw]
          http: [{route: [{destination: {host: reviews, subset: v1}}]}]
        """))
        let hosts = routes(config).virtualHosts
        #expect(hosts.map(\.name) == ["a.example.com:8080", "c.example.com:8080"])
        #expect(hosts.map(\.domains) == [["a.example.com", "b.example.com"], ["c.example.com"]])
    }

    @Test func privateVirtualServicesComeFirstWhenRoutesMerge() {
        let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: a-public, namespace: istio-system}
        spec:
          hosts: [shared.example.com]
          gateways: [gw]
          http: [{match: [{uri: {prefix: /public}}], route: [{destination: {host: reviews.shop.svc.cluster.local}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: b-named, namespace: shop}
        spec:
          hosts: [shared.example.com]
          exportTo: [istio-system]
          gateways: [istio-system/gw]
          http: [{match: [{uri: {prefix: /named}}], route: [{destination: {host: reviews}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: c-private, namespace: istio-system}
        spec:
          hosts: [shared.example.com]
          exportTo: ["."]
          gateways: [gw]
          http: [{match: [{uri: {prefix: /private}}], route: [{destination: {host: reviews.shop.svc.cluster.local}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: d-hidden, namespace: shop}
        spec:
          hosts: [shared.example.com]
          exportTo: ["."]
          gateways: [istio-system/gw]
          http: [{match: [{uri: {prefix: /hidden}}], route: [{destination: {host: reviews}}]}]
        """))
        let routes = routes(config).virtualHosts.first?.routes ?? []
        #expect(routes.map(\.match.prefix) == ["/private", "/named", "/public"])
    }
}

@Suite struct DiagnosticsTests {
    @Test func droppedOrIgnoredConfigIsReported() {
        let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [istio-system/gw]
          http:
          - delegate: {name: nowhere}
          - fault: {delay: {exponentialDelay: 1s, percentage: {value: 50}}}
            retries: {attempts: 2, retryRemoteLocalities: true}
            route: [{destination: {host: reviews}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: extra, namespace: istio-system}
        spec:
          host: reviews.shop.svc.cluster.local
          trafficPolicy: {proxyProtocol: {version: V2}}
        """))
        let fields = Set(config.diagnostics.map(\.field))
        #expect(fields.isSuperset(of: ["spec.http[0].delegate", "spec.http[1].fault.delay.exponentialDelay",
                                       "spec.http[1].retries.retryRemoteLocalities"]), "\(config.diagnostics)")
        #expect(!fields.contains("spec.trafficPolicy.proxyProtocol"), "the shop rule wins over the root-namespace one")
        #expect(config.diagnostics.allSatisfy { !$0.problem.isEmpty && !$0.fix.isEmpty })
        let ignored = configWithRule(reviewsRule("""
        trafficPolicy:
          proxyProtocol: {version: V2}
          outlierDetection: {consecutive5xxErrors: 1, outlierDetectionHttpErrorCodes: [503]}
        """))
        #expect(Set(ignored.diagnostics.map(\.field)) == ["spec.trafficPolicy.proxyProtocol",
                                                          "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes"])
    }
}

@Suite struct GatewayBindingTests {
    @Test func routesAreBuiltPerGatewaySoMatchGatewaysApply() {
        let config = Translator.config(for: router, in: model("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public, namespace: istio-system}
        spec:
          selector: {istio: ingressgateway}
          servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: partner, namespace: istio-system}
        spec:
          selector: {istio: ingressgateway}
          servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [b.example.com]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: both, namespace: istio-system}
        spec:
          hosts: [a.example.com, b.example.com]
          gateways: [public, partner]
          http:
          - match: [{uri: {prefix: /partner}, gateways: [partner]}]
            route: [{destination: {host: partner.internal}}]
          - route: [{destination: {host: web.internal}}]
        """))
        let hosts = routes(config).virtualHosts
        #expect(hosts.map(\.domains) == [["a.example.com"], ["b.example.com"]])
        #expect(hosts[0].routes.map(\.route.cluster) == ["outbound|8080||web.internal"])
        #expect(hosts[1].routes.map(\.route.cluster) == ["outbound|8080||partner.internal", "outbound|8080||web.internal"])
    }
}

@Suite struct RouteMemoTests {
    func virtualService(_ name: String, header: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: \(name), namespace: shop}
        spec:
          hosts: [\(name).example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{headers: {x-team: {exact: \(header)}}}]
            route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
          - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
        """
    }

    @Test func aCarriedMemoTranslatesAgainOnlyTheVirtualServicesThatChanged() {
        let before = model([gatewayYAML, virtualService("books", header: "a"), virtualService("games", header: "a")].joined(separator: "\n---\n"))
        let after = model([gatewayYAML, virtualService("books", header: "a"), virtualService("games", header: "b")].joined(separator: "\n---\n"))
        let first = RouteMemo()
        _ = Translator.config(for: router, in: before, memo: first)
        #expect(first.count == 2, "one route list per VirtualService bound to the gateway's one port")

        let second = RouteMemo(carrying: first)
        var built: [String] = []
        for resource in after.virtualServices(visibleTo: router.namespace) {
            let scope = RouteScope(model: after, proxyNamespace: router.namespace, port: 8080, memo: second)
            _ = second.routes(of: resource, gateway: "istio-system/gw", scope: scope) {
                built.append(resource.key.name)
                return []
            }
        }
        #expect(built == ["games"])

        // Translating through the carried memo gives what a translation without one gives.
        let third = RouteMemo(carrying: first)
        #expect(Translator.config(for: router, in: after, memo: third).routes == Translator.config(for: router, in: after).routes)
        #expect(Translator.config(for: router, in: after, memo: third).routes != Translator.config(for: router, in: before).routes)
    }

    /// A VirtualService (YAML) binding `hosts` on the gateway, with one header rule.
    func bound(_ name: String, hosts: [String], header: String = "a", gateways: String = "[istio-system/gw]", labels: String = "{}") -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: \(name), namespace: shop, labels: \(labels)}
        spec:
          hosts: [\(hosts.joined(separator: ", "))]
          gateways: \(gateways)
          http:
          - match: [{headers: {x-team: {exact: \(header)}}}]
            route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
          - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
        """
    }

    /// Translates each world through the memo carried from the world before, and returns the hosts
    /// whose virtual hosts each step built.
    func builtHosts(_ worlds: [[String]]) -> [Set<String>] {
        var memo: RouteMemo?
        return worlds.map { documents in
            let next = RouteMemo(carrying: memo)
            _ = Translator.config(for: router, in: model(documents.joined(separator: "\n---\n")), memo: next)
            memo = next
            return Set(next.builtHosts.withLock { $0 })
        }
    }

    @Test func aVirtualHostIsBuiltAgainOnlyWhenWhatItIsBuiltFromChanged() {
        let books = bound("books", hosts: ["books.example.com"]), games = bound("games", hosts: ["games.example.com"])
        let built = builtHosts([
            [gatewayYAML, books, games],
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], header: "b")],
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], header: "b")],
            // A label is content, but not in the routes: the virtual host stays.
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], header: "b", labels: "{team: fun}")],
            // A VirtualService added: only its host is built; the others are kept.
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], header: "b"), bound("music", hosts: ["music.example.com"])],
            // One binding a host another binds too: that host's virtual host merges both; its own
            // host keeps equal routes.
            [gatewayYAML, books, bound("games", hosts: ["games.example.com", "books.example.com"], header: "b"), bound("music", hosts: ["music.example.com"])],
        ])
        #expect(built == [["books.example.com", "games.example.com"], ["games.example.com"], [], [], ["music.example.com"],
                          ["books.example.com"]], "games.example.com's routes stay equal when games binds another host")
    }

    @Test func routesAndProblemsThroughACarriedMemoEqualAFreshTranslationAfterEveryKindOfChange() {
        let gatewayWithRedirect = gatewayYAML.replacingOccurrences(of: "hosts: [\"*.example.com\"]",
                                                                   with: "hosts: [\"*.example.com\"]\n    tls: {httpsRedirect: true}")
        #expect(gatewayWithRedirect != gatewayYAML)
        let root = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: root, namespace: shop}
        spec:
          hosts: [root.example.com, books.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /d}}]
            delegate: {name: child, namespace: shop}
          - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
        """
        func child(_ subset: String) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: child, namespace: shop}
            spec:
              http:
              - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: \(subset)}}]
            """
        }
        func broken(weight: Int) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: broken, namespace: shop}
            spec:
              hosts: [broken.example.com]
              gateways: [istio-system/gw]
              http:
              - route:
                - {destination: {host: reviews.shop.svc.cluster.local, subset: v1}, weight: \(weight)}
                - {destination: {host: reviews.shop.svc.cluster.local, subset: v2}, weight: 0}
            """
        }
        let books = bound("books", hosts: ["books.example.com"]), games = bound("games", hosts: ["games.example.com"])
        let worlds: [[String]] = [
            [gatewayYAML, books, games],
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], header: "b")],
            [gatewayYAML, books, bound("games", hosts: ["games.example.com", "arcade.example.com"], header: "b")],
            [gatewayYAML, bound("games", hosts: ["games.example.com", "arcade.example.com", "books.example.com"])],
            [gatewayYAML, bound("books", hosts: ["books.example.com"], header: "c"), games, bound("late", hosts: ["\"*.example.com\""])],
            [gatewayYAML, books, bound("games", hosts: ["games.example.com"], gateways: "[]")],
            [gatewayWithRedirect, books, games],
            [gatewayYAML, books, games, root, child("v1")],
            [gatewayYAML, books, games, root, child("v2")],
            [gatewayYAML, books, games, root, child("v2"), bound("games2", hosts: ["games.example.com"], header: "z")],
            [gatewayYAML],
            [gatewayYAML, books],
            [gatewayYAML, bound("books", hosts: ["books.example.com"], header: "q"), broken(weight: 0)],
            [gatewayYAML, books, broken(weight: 0)],
            [gatewayYAML, books, broken(weight: 100)],
        ]
        var memo: RouteMemo?
        var previous: [RouteConfiguration] = []
        for (step, documents) in worlds.enumerated() {
            let world = model(documents.joined(separator: "\n---\n"))
            let next = RouteMemo(carrying: memo)
            let translated = Translator.config(for: router, in: world, memo: next), fresh = Translator.config(for: router, in: world)
            let assembled = translated.routes
            #expect(assembled == fresh.routes, "step \(step)")
            #expect(translated.diagnostics == fresh.diagnostics, "step \(step)")
            #expect(fresh.diagnostics.contains { $0.resource.name == "broken" } == [12, 13].contains(step), "step \(step)")
            #expect(assembled != previous, "step \(step) changes the routes")
            previous = assembled
            memo = next
        }
    }
}
