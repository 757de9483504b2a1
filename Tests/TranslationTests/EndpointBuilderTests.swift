import EnvoyAPI
import IstioAPI
import Mesh
import Testing
@testable import Translation

let spreadService = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: spread, namespace: shop}
spec:
  hosts: [spread.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, locality: eu/west/a}
  - {address: 10.0.0.2, locality: eu/west/b}
  - {address: 10.0.0.3, locality: eu/east/a, weight: 2}
  - {address: 10.0.0.4, locality: us/east/a}
  - {address: 10.0.0.5, locality: us/east/a}
"""

func spreadAssignment(_ rule: String, proxyLocality: String) -> [String: (priority: UInt32, weight: UInt32, endpoints: Int)] {
    let proxy = Proxy(kind: .router, namespace: "istio-system", labels: router.labels, locality: proxyLocality)
    let config = Translator.config(for: proxy, in: model(spreadService + "\n---\n" + rule))
    let assignment = config.endpoints.first { $0.clusterName == "outbound|80||spread.shop.svc.cluster.local" }!
    var result: [String: (UInt32, UInt32, Int)] = [:]
    for group in assignment.endpoints {
        result[EndpointBuilder.name(of: group.locality)] = (group.priority, group.loadBalancingWeight.value, group.lbEndpoints.count)
    }
    return result
}

@Suite struct EndpointBuilderTests {
    @Test func outlierDetectionTurnsLocalitiesIntoFailoverPriorities() {
        let groups = spreadAssignment("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: spread, namespace: shop}
        spec:
          host: spread.shop.svc.cluster.local
          trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}
        """, proxyLocality: "eu/west/a")
        #expect(groups["eu/west/a"]?.priority == 0)
        #expect(groups["eu/west/b"]?.priority == 1)
        #expect(groups["eu/east/a"]?.priority == 2)
        #expect(groups["us/east/a"]?.priority == 3)
        let compacted = spreadAssignment("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: spread, namespace: shop}
        spec:
          host: spread.shop.svc.cluster.local
          trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}
        """, proxyLocality: "us/west/z")
        #expect(compacted["us/east/a"]?.priority == 0, "same region only → compacted to priority 0")
        #expect(compacted["eu/west/a"]?.priority == 1)
    }

    @Test func withoutOutlierDetectionOrProxyLocalityThereAreNoPriorities() {
        let rule = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: spread, namespace: shop}
        spec:
          host: spread.shop.svc.cluster.local
          trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
        """
        #expect(spreadAssignment(rule, proxyLocality: "eu/west/a").values.allSatisfy { $0.priority == 0 })
        let disabled = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: spread, namespace: shop}
        spec:
          host: spread.shop.svc.cluster.local
          trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {enabled: false}}}
        """
        #expect(spreadAssignment(disabled, proxyLocality: "eu/west/a").values.allSatisfy { $0.priority == 0 })
        let unknownProxy = spreadAssignment(disabled.replacingOccurrences(of: ", loadBalancer: {localityLbSetting: {enabled: false}}", with: ""),
                                            proxyLocality: "")
        #expect(unknownProxy.values.allSatisfy { $0.priority == 0 })
    }

    @Test func distributeRewritesLocalityWeightsAndDropsUnlistedLocalities() {
        let groups = spreadAssignment("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: spread, namespace: shop}
        spec:
          host: spread.shop.svc.cluster.local
          trafficPolicy:
            loadBalancer:
              localityLbSetting:
                distribute:
                - from: us/*
                  to: {"us/east/*": 10}
                - from: eu/*
                  to: {"eu/west/*": 60, "eu/east/*": 40}
        """, proxyLocality: "eu/west/b")
        #expect(groups["eu/west/a"]?.weight == 30 && groups["eu/west/b"]?.weight == 30, "60 shared by two equal localities")
        #expect(groups["eu/east/a"]?.weight == 40)
        #expect(groups["us/east/a"]?.endpoints == 0, "a locality not listed in `to` gets no traffic")
        #expect(groups["eu/east/a"]?.endpoints == 1)
    }
}

// MARK: - Failover

let regionsService = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: regions, namespace: shop}
spec:
  hosts: [regions.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.1.1, locality: us-east/a/1, labels: {version: v1}}
  - {address: 10.0.1.2, locality: us-east/a/1, labels: {version: v2}}
  - {address: 10.0.1.3, locality: us-east/b/1, labels: {version: v1}}
  - {address: 10.0.2.1, locality: us-west/a/1, labels: {version: v1}}
  - {address: 10.0.3.1, locality: eu-west/a/1, labels: {version: v1}}
  - {address: 10.0.3.2, locality: eu-west/a/1, labels: {version: v2}}
"""

/// The regions service's assignment for a proxy under a DR with outlier detection and `localityLbSetting`.
func regionsAssignment(_ localityLbSetting: String, proxyLocality: String, labels: [String: String] = ["version": "v1"]) -> ClusterLoadAssignment {
    let rule = """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: regions, namespace: shop}
    spec:
      host: regions.shop.svc.cluster.local
      trafficPolicy:
        outlierDetection: {consecutive5xxErrors: 1}
        loadBalancer: {localityLbSetting: \(localityLbSetting)}
    """
    let proxy = Proxy(kind: .sidecar, namespace: "shop", labels: labels, locality: proxyLocality)
    return EndpointBuilder.loadAssignment(clusterName: "outbound|80||regions.shop.svc.cluster.local",
                                          in: model(regionsService + "\n---\n" + rule), proxy: proxy)
}

/// An assignment of port-80 endpoints of weight 1: (locality, priority, addresses) per group, in order.
func expectedAssignment(_ groups: [(String, UInt32, [String])]) -> ClusterLoadAssignment {
    var assignment = ClusterLoadAssignment()
    assignment.clusterName = "outbound|80||regions.shop.svc.cluster.local"
    for (localityName, priority, addresses) in groups {
        var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
        group.locality = EndpointBuilder.locality(localityName)
        group.priority = priority
        group.loadBalancingWeight.value = UInt32(addresses.count)
        group.lbEndpoints = addresses.map { address in
            var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
            endpoint.endpoint.address = .socket(address, port: 80)
            endpoint.loadBalancingWeight.value = 1
            return endpoint
        }
        assignment.endpoints.append(group)
    }
    return assignment
}

@Suite struct LocalityFailoverTests {
    @Test func failoverRegionComesRightAfterTheProxysOwnRegion() {
        let assignment = regionsAssignment("{failover: [{from: us-east, to: eu-west}]}", proxyLocality: "us-east/a/1")
        #expect(assignment == expectedAssignment([
            ("eu-west/a/1", 2, ["10.0.3.1", "10.0.3.2"]),
            ("us-east/a/1", 0, ["10.0.1.1", "10.0.1.2"]),
            ("us-east/b/1", 1, ["10.0.1.3"]),
            ("us-west/a/1", 3, ["10.0.2.1"]),
        ]))
    }

    @Test func withoutFailoverEveryOtherRegionSharesOnePriority() {
        let assignment = regionsAssignment("{enabled: true}", proxyLocality: "us-east/a/1")
        #expect(assignment.endpoints.map(\.priority) == [2, 0, 1, 2])
    }

    @Test func failoverFromAnotherRegionDoesNotApply() {
        let assignment = regionsAssignment("{failover: [{from: us-east, to: eu-west}]}", proxyLocality: "us-west/b/1")
        #expect(assignment.endpoints.map(\.priority) == [1, 1, 1, 0], "us-west proxy: own region 0, all others 1")
        let secondRule = regionsAssignment("{failover: [{from: eu-west, to: us-east}, {from: us-west, to: us-east}]}",
                                           proxyLocality: "us-west/b/1")
        #expect(secondRule.endpoints.map(\.priority) == [2, 1, 1, 0], "us-west → us-east first, then eu-west")
    }

    @Test func disabledSettingOrNoOutlierDetectionGivesNoPriorities() {
        let disabled = regionsAssignment("{enabled: false, failover: [{from: us-east, to: eu-west}]}", proxyLocality: "us-east/a/1")
        #expect(disabled.endpoints.allSatisfy { $0.priority == 0 } && disabled.endpoints.count == 4)
        let proxy = Proxy(kind: .router, namespace: "shop", labels: ["version": "v1"], locality: "us-east/a/1")
        let config = Translator.config(for: proxy, in: model(regionsService + """

            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: regions, namespace: shop}
            spec:
              host: regions.shop.svc.cluster.local
              trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: eu-west}]}}}
            """))
        let withoutOutlierDetection = config.endpoints.first { $0.clusterName == "outbound|80||regions.shop.svc.cluster.local" }
        #expect(withoutOutlierDetection?.endpoints.count == 4)
        #expect(withoutOutlierDetection?.endpoints.allSatisfy { $0.priority == 0 } == true)
        #expect(config.diagnostics.map(\.field) == ["spec.trafficPolicy.loadBalancer.localityLbSetting.failover"],
                "the ignored failover is reported")
    }

    @Test func failoverPriorityLabelsMakeTiersAndSplitLocalities() {
        let assignment = regionsAssignment("{failoverPriority: [version, topology.kubernetes.io/region]}", proxyLocality: "us-east/a/1")
        #expect(assignment == expectedAssignment([
            ("eu-west/a/1", 1, ["10.0.3.1"]),
            ("eu-west/a/1", 2, ["10.0.3.2"]),
            ("us-east/a/1", 0, ["10.0.1.1"]),
            ("us-east/a/1", 2, ["10.0.1.2"]),
            ("us-east/b/1", 0, ["10.0.1.3"]),
            ("us-west/a/1", 1, ["10.0.2.1"]),
        ]))
    }

    @Test func failoverPriorityTopologyLabelsComeFromLocalities() {
        let assignment = regionsAssignment("{failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]}",
                                           proxyLocality: "eu-west/a/9", labels: [:])
        #expect(assignment.endpoints.map(\.priority) == [0, 1, 1, 1], "eu-west/a first, every other region next")
        let zoneOnly = regionsAssignment("{failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]}",
                                         proxyLocality: "us-east/b/2", labels: [:])
        #expect(zoneOnly.endpoints.map(\.priority) == [2, 1, 0, 2], "same zone, then same region, then the rest")
    }

    @Test func failoverPriorityWithAValueComparesEndpointsWithIt() {
        let assignment = regionsAssignment("{failoverPriority: [version=v2]}", proxyLocality: "us-east/a/1")
        let first = assignment.endpoints.filter { $0.priority == 0 }.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress.address)
        #expect(first == ["10.0.3.2", "10.0.1.2"], "v2 endpoints first although the proxy is v1")
        #expect(assignment.endpoints.map(\.priority) == [0, 1, 0, 1, 1, 1])
    }

    @Test func failoverPriorityWithFailoverOrdersRegionsInsideEachTier() {
        let assignment = regionsAssignment("{failoverPriority: [version], failover: [{from: us-east, to: eu-west}]}",
                                           proxyLocality: "us-east/a/1")
        #expect(assignment == expectedAssignment([
            ("eu-west/a/1", 2, ["10.0.3.1"]),
            ("eu-west/a/1", 5, ["10.0.3.2"]),
            ("us-east/a/1", 0, ["10.0.1.1"]),
            ("us-east/a/1", 4, ["10.0.1.2"]),
            ("us-east/b/1", 1, ["10.0.1.3"]),
            ("us-west/a/1", 3, ["10.0.2.1"]),
        ]))
    }
}
