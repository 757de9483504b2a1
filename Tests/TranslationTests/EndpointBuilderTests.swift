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
