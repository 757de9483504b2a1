import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf
import Testing
@testable import Translation

let reviewsService = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9443, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
"""

/// The config of `router` for the reviews service plus the given DestinationRule (and more YAML).
func configWithRule(_ ruleYAML: String) -> ProxyConfig {
    Translator.config(for: router, in: model(reviewsService + "\n---\n" + ruleYAML))
}

/// The DestinationRule `shop/reviews` for the reviews service; `spec` is what follows `host` (YAML at column 0).
func reviewsRule(_ spec: String) -> String {
    """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: shop}
    spec:
      host: reviews.shop.svc.cluster.local

    """ + spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
}

func cluster(_ config: ProxyConfig, _ name: String) -> Cluster {
    let found = config.clusters.first { $0.name == name }
    #expect(found != nil, "no cluster \(name) in \(config.clusters.map(\.name))")
    return found ?? Cluster()
}

func protocolOptions(_ cluster: Cluster) throws -> Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions? {
    guard let any = cluster.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] else { return nil }
    return try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(serializedBytes: any.value)
}

func upstreamTLS(_ cluster: Cluster) throws -> Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext? {
    guard cluster.hasTransportSocket else { return nil }
    #expect(cluster.transportSocket.name == "envoy.transport_sockets.tls")
    return try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(serializedBytes: cluster.transportSocket.typedConfig.value)
}

let v1 = "outbound|9080|v1|reviews.shop.svc.cluster.local"
let v2 = "outbound|9080|v2|reviews.shop.svc.cluster.local"
let plain = "outbound|9080||reviews.shop.svc.cluster.local"
let grpcPort = "outbound|9443||reviews.shop.svc.cluster.local"

@Suite struct ClusterBuilderTests {
    @Test func withoutRuleClustersHaveIstioDefaults() throws {
        let config = Translator.config(for: router, in: model(reviewsService))
        let base = cluster(config, plain)
        #expect(base.lbPolicy == .leastRequest)
        #expect(base.connectTimeout.seconds == 10)
        let thresholds = base.circuitBreakers.thresholds
        #expect(thresholds.count == 1)
        #expect([thresholds[0].maxConnections, thresholds[0].maxPendingRequests, thresholds[0].maxRequests, thresholds[0].maxRetries]
            .allSatisfy { $0.value == ClusterBuilder.unlimited })
        #expect(!base.hasOutlierDetection && !base.hasTransportSocket)
        #expect(try protocolOptions(base) == nil, "HTTP/1.1 upstream needs no protocol options")
        let grpc = try #require(try protocolOptions(cluster(config, grpcPort)))
        guard case .http2ProtocolOptions? = grpc.explicitHTTPConfig.protocolConfig else {
            Issue.record("GRPC ports speak HTTP/2 upstream")
            return
        }
    }

    @Test func portLevelSettingsReplaceTopLevelWholesaleAndSubsetsOverrideFieldByField() {
        let config = configWithRule("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews, namespace: shop}
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer: {simple: RANDOM}
            connectionPool: {tcp: {maxConnections: 10}}
            outlierDetection: {consecutive5xxErrors: 3}
            portLevelSettings:
            - port: {number: 9443}
              loadBalancer: {simple: ROUND_ROBIN}
          subsets:
          - name: v1
            labels: {version: v1}
          - name: v2
            labels: {version: v2}
            trafficPolicy:
              loadBalancer: {simple: ROUND_ROBIN}
        """)
        let base = cluster(config, plain)
        #expect(base.lbPolicy == .random)
        #expect(base.circuitBreakers.thresholds[0].maxConnections.value == 10)
        #expect(base.outlierDetection.consecutive5Xx.value == 3)
        let portLevel = cluster(config, grpcPort)
        #expect(portLevel.lbPolicy == .roundRobin)
        #expect(portLevel.circuitBreakers.thresholds[0].maxConnections.value == ClusterBuilder.unlimited,
                "port-level settings do not inherit top-level fields")
        #expect(!portLevel.hasOutlierDetection)
        #expect(cluster(config, v1).lbPolicy == .random, "v1 has no subset policy")
        let subset = cluster(config, v2)
        #expect(subset.lbPolicy == .roundRobin)
        #expect(subset.circuitBreakers.thresholds[0].maxConnections.value == 10, "unset subset fields keep the rule's")
    }

    @Test func subsetPortLevelEntryReplacesEvenWithUnsetFields() {
        let config = configWithRule(reviewsRule("""
        trafficPolicy: {loadBalancer: {simple: RANDOM}, connectionPool: {tcp: {maxConnections: 10}}}
        subsets:
        - name: v1
          labels: {version: v1}
          trafficPolicy:
            portLevelSettings: [{port: {number: 9080}, outlierDetection: {consecutiveGatewayErrors: 2}}]
        """))
        let subset = cluster(config, v1)
        #expect(subset.lbPolicy == .leastRequest)
        #expect(subset.circuitBreakers.thresholds[0].maxConnections.value == ClusterBuilder.unlimited)
        #expect(subset.outlierDetection.consecutiveGatewayFailure.value == 2)
        #expect(subset.outlierDetection.enforcingConsecutiveGatewayFailure.value == 100)
    }

    @Test func connectionPoolBecomesCircuitBreakersAndProtocolOptions() throws {
        let config = configWithRule(reviewsRule("""
        trafficPolicy:
          connectionPool:
            tcp: {maxConnections: 1, connectTimeout: 2s, maxConnectionDuration: 60s, tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}}
            http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRetries: 4, maxRequestsPerConnection: 5, idleTimeout: 30s}
        """))
        let base = cluster(config, plain)
        let thresholds = base.circuitBreakers.thresholds[0]
        #expect([thresholds.maxConnections.value, thresholds.maxPendingRequests.value, thresholds.maxRequests.value,
                 thresholds.maxRetries.value] == [1, 2, 3, 4])
        #expect(base.connectTimeout.seconds == 2)
        #expect(base.upstreamConnectionOptions.tcpKeepalive.keepaliveProbes.value == 3)
        #expect(base.upstreamConnectionOptions.tcpKeepalive.keepaliveTime.value == 7200)
        let options = try #require(try protocolOptions(base))
        #expect(options.commonHTTPProtocolOptions.idleTimeout.seconds == 30)
        #expect(options.commonHTTPProtocolOptions.maxRequestsPerConnection.value == 5)
        #expect(options.commonHTTPProtocolOptions.maxConnectionDuration.seconds == 60)
        guard case .httpProtocolOptions? = options.explicitHTTPConfig.protocolConfig else {
            Issue.record("an upstream protocol must always be chosen")
            return
        }
    }

    @Test func consistentHashBecomesRingHashOrMaglevAndARouteHashPolicy() {
        let config = Translator.config(for: router, in: model(gatewayYAML + "\n---\n" + """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews-hash, namespace: shop}
        spec:
          host: reviews.shop.svc.cluster.local
          trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
          subsets:
          - name: sticky
            labels: {version: v1}
            trafficPolicy: {loadBalancer: {consistentHash: {maglev: {tableSize: 65537}, httpCookie: {name: session, ttl: 10s}}}}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: shop}
        spec:
          hosts: [reviews.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /v1}}]
            route: [{destination: {host: reviews, subset: sticky}}]
          - route: [{destination: {host: reviews}}]
        """))
        let sticky = "outbound|9080|sticky|reviews.shop.svc.cluster.local"
        #expect(cluster(config, plain).lbPolicy == .ringHash)
        #expect(cluster(config, plain).ringHashLbConfig.minimumRingSize.value == 1024)
        #expect(cluster(config, v1).lbPolicy == .ringHash, "rules for one host merge: the first rule's v1 subset wins")
        #expect(cluster(config, sticky).lbPolicy == .maglev)
        #expect(cluster(config, sticky).maglevLbConfig.tableSize.value == 65537)
        let host = routes(config).virtualHosts[0]
        let routes = host.routes
        #expect(routes[0].route.hashPolicy.map(\.cookie.name) == ["session"])
        #expect(routes[0].route.hashPolicy[0].cookie.ttl.seconds == 10)
        #expect(routes[1].route.hashPolicy.map(\.header.headerName) == ["x-user"])
        // Both routes hash, so they share one policy, sent on the virtual host.
        let retry = routes[1].route.hasRetryPolicy ? routes[1].route.retryPolicy : host.retryPolicy
        #expect(retry.numRetries.value == 2 && retry.retryHostPredicate.isEmpty, "no previous-hosts predicate with consistent hashing")
    }

    @Test func warmupBecomesSlowStartAndRetryBudgetAThreshold() {
        let config = configWithRule(reviewsRule("""
        trafficPolicy:
          loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 60s, aggression: 2.0}}
          retryBudget: {percent: 25}
        subsets:
        - name: v1
          labels: {version: v1}
          trafficPolicy: {loadBalancer: {simple: RANDOM, warmupDurationSecs: 30s}}
        """))
        let slowStart = cluster(config, plain).roundRobinLbConfig.slowStartConfig
        #expect(slowStart.slowStartWindow.seconds == 60)
        #expect(slowStart.aggression.defaultValue == 2.0 && !slowStart.aggression.runtimeKey.isEmpty)
        #expect(slowStart.minWeightPercent.value == 10)
        #expect(cluster(config, v1).lbConfig == nil, "RANDOM has no slow start")
        let budget = cluster(config, plain).circuitBreakers.thresholds[0].retryBudget
        #expect(budget.budgetPercent.value == 25 && budget.minRetryConcurrency.value == 3)
        #expect(cluster(config, grpcPort).circuitBreakers.thresholds[0].hasRetryBudget, "retryBudget is not replaced by port-level settings")
    }

    @Test func outlierDetectionAndPanicThreshold() {
        let config = configWithRule(reviewsRule("""
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 0, interval: 1s, baseEjectionTime: 180s, maxEjectionPercent: 100, minHealthPercent: 20}
        """))
        let detection = cluster(config, plain).outlierDetection
        #expect(detection.consecutive5Xx.value == 0 && detection.enforcingConsecutive5Xx.value == 0, "0 disables 5xx ejection")
        #expect(detection.hasEnforcingSuccessRate && detection.enforcingSuccessRate.value == 0)
        #expect(detection.interval.seconds == 1 && detection.baseEjectionTime.seconds == 180)
        #expect(detection.maxEjectionPercent.value == 100)
        #expect(cluster(config, plain).commonLbConfig.healthyPanicThreshold.value == 20)
    }

    @Test func simpleAndMutualTLSUseCertificateFiles() throws {
        let config = configWithRule(reviewsRule("""
        trafficPolicy:
          tls: {mode: SIMPLE, caCertificates: /certs/ca.pem, sni: reviews.internal, subjectAltNames: [reviews.internal]}
        subsets:
        - name: v1
          labels: {version: v1}
          trafficPolicy:
            tls: {mode: MUTUAL, clientCertificate: /certs/client.pem, privateKey: /certs/client.key}
        - name: v2
          labels: {version: v2}
          trafficPolicy: {tls: {mode: DISABLE}}
        """))
        let simple = try #require(try upstreamTLS(cluster(config, plain)))
        #expect(simple.sni == "reviews.internal")
        #expect(simple.commonTlsContext.validationContext.trustedCa.filename == "/certs/ca.pem")
        #expect(simple.commonTlsContext.validationContext.matchTypedSubjectAltNames.map(\.matcher.exact) == ["reviews.internal"])
        #expect(simple.commonTlsContext.tlsCertificates.isEmpty)
        let mutual = try #require(try upstreamTLS(cluster(config, v1)))
        #expect(mutual.commonTlsContext.tlsCertificates.map(\.certificateChain.filename) == ["/certs/client.pem"])
        #expect(mutual.commonTlsContext.tlsCertificates.map(\.privateKey.filename) == ["/certs/client.key"])
        #expect(mutual.commonTlsContext.validationContext.trustedCa.filename == ClusterBuilder.systemTrustBundle,
                "the subset's tls replaces the rule's wholesale")
        #expect(try upstreamTLS(cluster(config, v2)) == nil)
        #expect(try protocolOptions(cluster(config, v1))?.upstreamHTTPProtocolOptions.autoSni == true, "no sni → SNI from the Host")
        #expect(config.diagnostics.isEmpty)
    }

    @Test func destinationRuleLookupOrderAndExportTo() {
        func rule(_ namespace: String, _ lb: String, exportTo: String = "[\"*\"]") -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews-\(lb.lowercased()), namespace: \(namespace)}
            spec:
              host: reviews.shop.svc.cluster.local
              exportTo: \(exportTo)
              trafficPolicy: {loadBalancer: {simple: \(lb)}}
            """
        }
        let sidecarish = Proxy(kind: .router, namespace: "edge", labels: ["istio": "ingressgateway"])
        func lb(_ proxy: Proxy, _ yaml: [String]) -> Envoy_Config_Cluster_V3_Cluster.LbPolicy {
            let config = Translator.config(for: proxy, in: model(([reviewsService] + yaml).joined(separator: "\n---\n")))
            return cluster(config, plain).lbPolicy
        }
        let all = [rule("istio-system", "RANDOM"), rule("shop", "ROUND_ROBIN"), rule("edge", "LEAST_REQUEST")]
        #expect(lb(sidecarish, all) == .leastRequest, "the proxy's own namespace first")
        #expect(lb(sidecarish, Array(all.prefix(2))) == .roundRobin, "then the service's namespace")
        #expect(lb(sidecarish, [all[0], rule("shop", "ROUND_ROBIN", exportTo: "[\".\"]")]) == .random,
                "a rule not exported to the proxy is skipped; the root namespace comes last")
        #expect(lb(router, all) == .roundRobin, "a proxy in the root namespace looks at the service's namespace first")
    }

    @Test func rulesForTheSameHostMergeAndWildcardsLoseToExactHosts() {
        let config = configWithRule("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: a, namespace: shop}
        spec:
          host: reviews.shop.svc.cluster.local
          subsets: [{name: v1, labels: {version: v1}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: b, namespace: shop}
        spec:
          host: reviews.shop.svc.cluster.local
          trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
          subsets: [{name: v2, labels: {version: v2}}, {name: v1, labels: {version: v2}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: wildcard, namespace: shop}
        spec:
          host: "*.shop.svc.cluster.local"
          trafficPolicy: {loadBalancer: {simple: RANDOM}}
          subsets: [{name: v3, labels: {version: v3}}]
        """)
        #expect(Set(config.clusters.map(\.name)).isSuperset(of: [v1, v2]))
        #expect(!config.clusters.contains { $0.name.contains("|v3|") })
        #expect(cluster(config, plain).lbPolicy == .roundRobin)
        let v1Endpoints = config.endpoints.first { $0.clusterName == v1 }
        #expect(v1Endpoints?.endpoints.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress.address) == ["10.0.0.1"],
                "the first definition of a subset name wins")
    }
}
