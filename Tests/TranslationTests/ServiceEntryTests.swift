import EnvoyAPI
import IstioAPI
@testable import Mesh
import Testing
@testable import Translation

@Suite struct ServiceEntryTests {
    let config = Translator.config(for: router, in: model("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: dns, namespace: shop}
    spec:
      hosts: [httpbin.org]
      resolution: DNS
      ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: round-robin, namespace: shop}
    spec:
      hosts: [rr.example.org]
      resolution: DNS_ROUND_ROBIN
      ports: [{number: 443, name: tls, protocol: TLS}]
      endpoints: [{address: a.example.org}, {address: b.example.org}]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: none, namespace: shop}
    spec:
      hosts: [passthrough.example.org]
      resolution: NONE
      ports: [{number: 3306, name: tcp, protocol: TCP}]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: workloads, namespace: shop}
    spec:
      hosts: [ratings.shop.svc.cluster.local]
      resolution: STATIC
      ports: [{number: 9080, name: http, protocol: HTTP}]
      workloadSelector: {labels: {app: ratings}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: ratings-1, namespace: shop}
    spec: {address: 10.1.0.1, labels: {app: ratings}, ports: {http: 19080}, weight: 3}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: ratings-by-name, namespace: shop}
    spec: {address: ratings.vm.internal, labels: {app: ratings}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: ratings-elsewhere, namespace: other}
    spec: {address: 10.9.0.1, labels: {app: ratings}}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: private, namespace: shop}
    spec:
      hosts: [private.shop.svc.cluster.local]
      exportTo: ["."]
      resolution: STATIC
      ports: [{number: 80, name: http, protocol: HTTP}]
      endpoints: [{address: 10.2.0.1}]
    """))

    @Test func dnsWithoutEndpointsResolvesTheHostAtTheTargetPort() throws {
        let dns = cluster(config, "outbound|80||httpbin.org")
        #expect(dns.clusterType.name == "envoy.clusters.dns")
        let settings = try Envoy_Extensions_Clusters_Dns_V3_DnsCluster(serializedBytes: dns.clusterType.typedConfig.value)
        #expect(!settings.allAddressesInSingleEndpoint)
        #expect(settings.dnsRefreshRate.seconds == 60 && settings.respectDnsTtl)
        let address = dns.loadAssignment.endpoints.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress)
        #expect(address.map(\.address) == ["httpbin.org"] && address.map(\.portValue) == [8080])
        #expect(!config.endpoints.contains { $0.clusterName == dns.name }, "DNS clusters carry their endpoints inline")
    }

    @Test func dnsRoundRobinUsesOneEndpointWithLogicalSemantics() throws {
        let logical = cluster(config, "outbound|443||rr.example.org")
        let settings = try Envoy_Extensions_Clusters_Dns_V3_DnsCluster(serializedBytes: logical.clusterType.typedConfig.value)
        #expect(settings.allAddressesInSingleEndpoint)
        #expect(logical.loadAssignment.endpoints.flatMap(\.lbEndpoints).map(\.endpoint.address.socketAddress.address) == ["a.example.org"])
    }

    @Test func noneResolutionOnARouterIsAnEmptyEDSCluster() {
        let passthrough = cluster(config, "outbound|3306||passthrough.example.org")
        #expect(passthrough.type == .eds)
        let assignment = config.endpoints.first { $0.clusterName == passthrough.name }
        #expect(assignment != nil && assignment!.endpoints.isEmpty)
    }

    @Test func workloadSelectorPicksIPWorkloadsOfItsNamespace() {
        let assignment = config.endpoints.first { $0.clusterName == "outbound|9080||ratings.shop.svc.cluster.local" }
        let endpoints = assignment?.endpoints.flatMap(\.lbEndpoints) ?? []
        #expect(endpoints.map(\.endpoint.address.socketAddress.address) == ["10.1.0.1"],
                "hostname workloads need DNS resolution; workloads of other namespaces are not selected")
        #expect(endpoints.map(\.endpoint.address.socketAddress.portValue) == [19080])
        #expect(endpoints.map(\.loadBalancingWeight.value) == [3])
    }

    @Test func exportToLimitsWhichNamespacesSeeAService() {
        #expect(!config.clusters.contains { $0.name.hasSuffix("private.shop.svc.cluster.local") })
        let shopRouter = Proxy(kind: .router, namespace: "shop", labels: router.labels)
        let shopConfig = Translator.config(for: shopRouter, in: model("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: private, namespace: shop}
        spec:
          hosts: [private.shop.svc.cluster.local]
          exportTo: ["."]
          resolution: STATIC
          ports: [{number: 80, name: http, protocol: HTTP}]
        """))
        #expect(shopConfig.clusters.contains { $0.name == "outbound|80||private.shop.svc.cluster.local" })
    }

    @Test func ipAddressRecognition() {
        func endpoint(_ address: String) -> Service.Endpoint {
            Service.Endpoint(address: address, ports: [:], labels: [:], weight: 1, locality: "")
        }
        #expect(endpoint("10.0.0.1").hasIPAddress && endpoint("::1").hasIPAddress && endpoint("fe80::1").hasIPAddress)
        #expect(!endpoint("10.0.0.256").hasIPAddress && !endpoint("host.example").hasIPAddress && !endpoint("unix:///sock").hasIPAddress)
        #expect(!endpoint("1.2.3").hasIPAddress)
    }
}
