import EnvoyAPI
import Mesh
import Testing
@testable import Translation

@Suite struct GRPCBuilderTests {
    let client = Proxy(kind: .sidecar, namespace: "shop", isProxylessGRPC: true)

    @Test func apiListenersNamedByHostAndPortWithRDS() throws {
        let config = Translator.config(for: client, in: model(gatewayYAML))
        #expect(config.listeners.map(\.name) == ["reviews.shop.svc.cluster.local:9080"])
        let listener = config.listeners[0]
        #expect(listener.hasApiListener)
        #expect(listener.filterChains.isEmpty && listener.listenerFilters.isEmpty, "gRPC NACKs listener filters")
        let manager = try HTTPConnectionManager(serializedBytes: listener.apiListener.apiListener.value)
        #expect(manager.rds.routeConfigName == "outbound|9080||reviews.shop.svc.cluster.local")
        #expect(manager.httpFilters.last?.name == "envoy.filters.http.router")
    }

    @Test func clustersAreEDSWithoutEnvoyOnlyPolicies() {
        let config = Translator.config(for: client, in: model(gatewayYAML))
        #expect(Set(config.clusters.map(\.name)) == [
            "outbound|9080||reviews.shop.svc.cluster.local", "outbound|9080|v1|reviews.shop.svc.cluster.local",
            "outbound|9080|v2|reviews.shop.svc.cluster.local",
        ])
        #expect(config.clusters.allSatisfy { $0.type == .eds && $0.lbPolicy == .roundRobin })
        #expect(config.endpoints.count == 3)
    }

    @Test func meshVirtualServiceRoutesWithTimeoutAsMaxStreamDuration() {
        let config = Translator.config(for: client, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews]
          http:
          - timeout: 2s
            route:
            - {destination: {host: reviews, subset: v1}, weight: 20}
            - {destination: {host: reviews, subset: v2}, weight: 80}
        """))
        let host = config.routes[0].virtualHosts[0]
        #expect(host.domains == ["reviews.shop.svc.cluster.local", "reviews.shop.svc.cluster.local:9080"])
        let action = host.routes[0].route
        #expect(action.weightedClusters.clusters.map(\.weight.value) == [20, 80])
        #expect(action.maxStreamDuration.maxStreamDuration.seconds == 2)
        #expect(!action.hasTimeout && !action.hasRetryPolicy)
    }

    @Test func gatewayOnlyVirtualServicesDoNotApplyAndADefaultRouteRemains() {
        let config = Translator.config(for: client, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: edge, namespace: shop}
        spec:
          hosts: [reviews]
          gateways: [istio-system/gw]
          http: [{route: [{destination: {host: reviews, subset: v2}}]}]
        """))
        let routes = config.routes[0].virtualHosts[0].routes
        #expect(routes.map(\.name) == ["default"])
        #expect(routes[0].route.cluster == "outbound|9080||reviews.shop.svc.cluster.local")
    }

    @Test func matchesBoundToTheMeshApply() {
        let config = Translator.config(for: client, in: model(gatewayYAML + """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews]
          gateways: [mesh, istio-system/gw]
          http:
          - match: [{gateways: [mesh], headers: {end-user: {exact: jason}}}]
            route: [{destination: {host: reviews, subset: v2}}]
          - route: [{destination: {host: reviews, subset: v1}}]
        """))
        let routes = config.routes[0].virtualHosts[0].routes
        #expect(routes.map(\.route.cluster) == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080|v1|reviews.shop.svc.cluster.local"])
    }

    @Test func shortDialNamesExpandWithTheNodeDNSDomain() throws {
        let named = try Proxy(nodeID: "sidecar~10.0.0.9~client.shop~shop.svc.cluster.local", generator: "grpc")
        let config = Translator.config(for: named, in: model(gatewayYAML))
        #expect(config.listeners.map(\.name) == ["reviews.shop.svc.cluster.local:9080", "reviews:9080", "reviews.shop:9080", "reviews.shop.svc:9080"])
        let routeNames = try config.listeners.map { try HTTPConnectionManager(serializedBytes: $0.apiListener.apiListener.value).rds.routeConfigName }
        #expect(Set(routeNames) == ["outbound|9080||reviews.shop.svc.cluster.local"], "every alias routes like the FQDN")
        #expect(config.routes[0].virtualHosts[0].domains.contains("reviews:9080"), "gRPC selects the virtual host by the dialled name")
        #expect(config.routes[0].virtualHosts[0].domains.contains("reviews.shop.svc:9080"))
    }

    @Test func shortNamesAreOnlyForServicesInTheClientsOwnDomain() throws {
        let other = try Proxy(nodeID: "sidecar~10.0.0.9~client.web~web.svc.cluster.local", generator: "grpc")
        #expect(GRPCBuilder.dialNames(for: "reviews.shop.svc.cluster.local", proxy: other) == ["reviews.shop.svc.cluster.local"])
        let named = try Proxy(nodeID: "sidecar~10.0.0.9~client.shop~shop.svc.cluster.local", generator: "grpc")
        #expect(GRPCBuilder.dialNames(for: "api.example.com", proxy: named) == ["api.example.com"])
        #expect(GRPCBuilder.dialNames(for: "a.b.shop.svc.cluster.local", proxy: named) == ["a.b.shop.svc.cluster.local", "a.b.shop", "a.b.shop.svc"],
                "a dotted short name needs its namespace")
        #expect(GRPCBuilder.dialNames(for: "reviews.shop.svc.cluster.local", proxy: client) == ["reviews.shop.svc.cluster.local"],
                "no DNS domain in the node id: FQDN only")
    }
}
