import EnvoyAPI
import MCP
import Mesh
import Snapshot
import Testing
@testable import Translation

let router = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"])

/// The mesh model of some Istio YAML (decoding must succeed).
func model(_ yaml: String) -> MeshModel {
    let decoded = IstioYAML.decode(yaml, file: "test.yaml")
    #expect(decoded.errors.isEmpty, "\(decoded.errors)")
    var byKind: [ConfigKind: SnapshotUpdate.Change] = [:]
    for kind in ConfigKind.allCases { byKind[kind] = .replace(decoded.resources.filter { $0.key.kind == kind }) }
    return MeshModel(snapshot: Snapshot.empty.applying(SnapshotUpdate(byKind)).snapshot)
}

let gatewayYAML = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}, locality: eu/west-1/a}
  - {address: 10.0.0.2, labels: {version: v2}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""

func routes(_ config: ProxyConfig, _ name: String = "http.8080") -> RouteConfiguration {
    config.routes.first { $0.name == name } ?? RouteConfiguration()
}

@Suite struct GatewayTranslationTests {
    @Test func gatewayWithoutVirtualServicesIsABlackhole404() {
        let config = Translator.config(for: router, in: model(gatewayYAML))
        #expect(config.listeners.map(\.name) == ["0.0.0.0_8080"])
        let routeConfiguration = routes(config)
        #expect(routeConfiguration.virtualHosts.map(\.name) == ["blackhole:8080"])
        #expect(routeConfiguration.virtualHosts[0].domains == ["*"])
        #expect(routeConfiguration.virtualHosts[0].routes.isEmpty)
    }

    @Test func routersWhoseLabelsDoNotMatchGetNoListener() {
        let other = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "egressgateway"])
        #expect(Translator.config(for: other, in: model(gatewayYAML)).listeners.isEmpty)
    }

    @Test func clustersPerPortAndSubsetWithIstioNames() {
        let config = Translator.config(for: router, in: model(gatewayYAML))
        #expect(Set(config.clusters.map(\.name)) == [
            "BlackHoleCluster",
            "outbound|9080||reviews.shop.svc.cluster.local",
            "outbound|9080|v1|reviews.shop.svc.cluster.local",
            "outbound|9080|v2|reviews.shop.svc.cluster.local",
        ])
        let cluster = config.clusters.first { $0.name == "outbound|9080||reviews.shop.svc.cluster.local" }!
        #expect(cluster.type == .eds)
        #expect(cluster.edsClusterConfig.serviceName == cluster.name)
        #expect(cluster.edsClusterConfig.edsConfig.initialFetchTimeout.seconds == 0)
        #expect(cluster.lbPolicy == .leastRequest)
    }

    @Test func endpointsGroupedByLocalityWithWeightsAndSubsets() {
        let config = Translator.config(for: router, in: model(gatewayYAML))
        let all = config.endpoints.first { $0.clusterName == "outbound|9080||reviews.shop.svc.cluster.local" }!
        #expect(all.endpoints.count == 2)
        let regions = all.endpoints.map(\.locality.region)
        #expect(regions == ["", "eu"])
        #expect(all.endpoints.allSatisfy { $0.hasLocality }, "proxyless gRPC needs a locality on every group")
        let weights = all.endpoints.flatMap(\.lbEndpoints).map(\.loadBalancingWeight.value)
        #expect(weights.sorted() == [1, 3])
        let v2 = config.endpoints.first { $0.clusterName == "outbound|9080|v2|reviews.shop.svc.cluster.local" }!
        #expect(v2.endpoints.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress.address) == ["10.0.0.2"])
        #expect(v2.endpoints.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress.portValue) == [9080])
    }

    @Test func weightedRoutesBecomeWeightedClustersAndZeroWeightsAreDropped() {
        let config = Translator.config(for: router, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [istio-system/gw]
          http:
          - route:
            - {destination: {host: reviews.shop.svc.cluster.local, subset: v1}, weight: 80}
            - {destination: {host: reviews.shop.svc.cluster.local, subset: v2}, weight: 20}
            - {destination: {host: reviews.shop.svc.cluster.local}, weight: 0}
        """))
        let host = routes(config).virtualHosts.first!
        #expect(host.name == "reviews.example.com:8080")
        #expect(host.domains == ["reviews.example.com"])
        let weighted = host.routes[0].route.weightedClusters.clusters
        #expect(weighted.map(\.name) == ["outbound|9080|v1|reviews.shop.svc.cluster.local", "outbound|9080|v2|reviews.shop.svc.cluster.local"])
        #expect(weighted.map(\.weight.value) == [80, 20])
        #expect(host.routes[0].route.timeout.seconds == 0, "Istio's default: no route timeout")
        #expect(host.retryPolicy.numRetries.value == 2 && !host.routes[0].route.hasRetryPolicy, "Istio's default policy, once on the virtual host")
    }

    @Test func aRetryPolicyEveryRouteSharesIsSentOnceOnTheVirtualHost() {
        let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: shared, namespace: shop}
        spec:
          hosts: [shared.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /a}}]
            route: [{destination: {host: reviews}}]
          - match: [{uri: {prefix: /old}}]
            redirect: {uri: /new}
          - route: [{destination: {host: reviews, subset: v1}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: none, namespace: shop}
        spec:
          hosts: [none.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /a}}]
            route: [{destination: {host: reviews}}]
          - retries: {attempts: 0}
            route: [{destination: {host: reviews}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: custom, namespace: shop}
        spec:
          hosts: [custom.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /a}}]
            route: [{destination: {host: reviews}}]
          - retries: {attempts: 3, retryOn: "503"}
            route: [{destination: {host: reviews}}]
        """))
        let hosts = Dictionary(uniqueKeysWithValues: routes(config).virtualHosts.map { ($0.domains[0], $0) })
        let shared = hosts["shared.example.com"]!
        #expect(shared.retryPolicy.numRetries.value == 2)
        #expect(shared.retryPolicy.retryOn == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes")
        #expect(shared.routes.allSatisfy { !$0.route.hasRetryPolicy }, "\(shared.routes)")
        #expect(shared.routes.count == 3 && shared.routes[1].redirect.pathRedirect == "/new")
        // A route without retries would inherit a virtual host's policy: every policy stays on its route.
        let none = hosts["none.example.com"]!
        #expect(!none.hasRetryPolicy)
        #expect(none.routes.map(\.route.hasRetryPolicy) == [true, false])
        let custom = hosts["custom.example.com"]!
        #expect(!custom.hasRetryPolicy)
        #expect(custom.routes.map(\.route.retryPolicy.numRetries.value) == [2, 3])
    }

    @Test func matchesTranslateToEnvoyMatchers() {
        let config = Translator.config(for: router, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [istio-system/gw]
          http:
          - match:
            - uri: {exact: /Foo}
              statPrefix: foo_requests
              ignoreUriCase: true
              headers: {end-user: {exact: jason}}
              withoutHeaders: {x-canary: {}}
              queryParams: {debug: {exact: "1"}}
              method: {exact: GET}
            route: [{destination: {host: reviews, subset: v2}}]
          - match: [{uri: {prefix: /}}]
            route: [{destination: {host: reviews, subset: v1}}]
          - route: [{destination: {host: never}}]
        """))
        let host = routes(config).virtualHosts.first!
        #expect(host.routes.count == 2, "rules after a catch-all are not emitted")
        let match = host.routes[0].match
        #expect(match.path == "/Foo")
        #expect(host.routes[0].statPrefix == "foo_requests")
        #expect(match.caseSensitive.value == false)
        #expect(match.headers.map(\.name) == [":method", "end-user", "x-canary"])
        #expect(match.headers[2].invertMatch && match.headers[2].presentMatch)
        #expect(match.queryParameters.map(\.stringMatch.exact) == ["1"])
        #expect(host.routes[0].route.cluster == "outbound|9080|v2|reviews.shop.svc.cluster.local", "short host resolved in the VS namespace")
    }

    @Test func virtualServicesForOtherGatewaysOrHostsAreNotBound() {
        let config = Translator.config(for: router, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: elsewhere, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [other-gateway]
          http: [{route: [{destination: {host: reviews}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: wrong-host, namespace: shop}
        spec:
          hosts: [reviews.example.org]
          gateways: [istio-system/gw]
          http: [{route: [{destination: {host: reviews}}]}]
        """))
        #expect(routes(config).virtualHosts.map(\.name) == ["blackhole:8080"])
    }

    @Test func redirectAndDirectResponse() {
        let config = Translator.config(for: router, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: misc, namespace: istio-system}
        spec:
          hosts: [misc.example.com]
          gateways: [gw]
          http:
          - match: [{uri: {prefix: /old}}]
            redirect: {uri: /new, authority: example.org, redirectCode: 302}
          - match: [{uri: {prefix: /teapot}}]
            directResponse: {status: 418, body: {string: x}}
        """))
        let host = routes(config).virtualHosts.first!
        #expect(host.routes[0].redirect.pathRedirect == "/new")
        #expect(host.routes[0].redirect.hostRedirect == "example.org")
        #expect(host.routes[0].redirect.responseCode == .found)
        #expect(host.routes[1].directResponse.status == 418)
        #expect(host.routes[1].directResponse.body.inlineString == "x")
    }

    @Test func connectionManagerUsesRDSOverADSAndStockFilters() throws {
        let listener = ListenerBuilder.httpListener(port: 8080, routeName: "http.8080")
        let filter = listener.filterChains[0].filters[0]
        #expect(filter.name == "envoy.filters.network.http_connection_manager")
        let manager = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(serializedBytes: filter.typedConfig.value)
        #expect(manager.rds.routeConfigName == "http.8080")
        #expect(manager.rds.configSource.ads == Envoy_Config_Core_V3_AggregatedConfigSource())
        #expect(manager.httpFilters.map(\.name) == ["envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"])
        #expect(manager.serverName == "istio-envoy")
        #expect(manager.forwardClientCertDetails == .sanitizeSet)
        #expect(manager.setCurrentClientCertDetails.subject.value && manager.setCurrentClientCertDetails.dns)
    }
}
