import MCP
import Snapshot
import Testing

/// The problems Istio's validation reports for one YAML document.
func problems(_ yaml: String) -> [ConfigDecodingError] {
    let decoded = IstioYAML.decode(yaml, file: "v.yaml")
    #expect(decoded.errors.isEmpty, "\(decoded.errors)")
    return decoded.resources.flatMap(ConfigValidator.problems(of:))
}

@Suite struct ConfigValidatorTests {
    @Test(arguments: [
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{route: [{destination: {host: a}, weight: -1}]}]}", "spec.http[0].route[0].weight"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{route: [{destination: {host: a}, weight: 0}, {destination: {host: b}, weight: 0}]}]}", "spec.http[0].route"),
        ("kind: VirtualService\nspec: {hosts: ['a.*.com'], http: [{route: [{destination: {host: a}}]}]}", "spec.hosts[0]"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{match: [{uri: {regex: '(unclosed'}}], route: [{destination: {host: a}}]}]}", "spec.http[0].match[0].uri.regex"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{match: [{headers: {End-User: {exact: x}}}], route: [{destination: {host: a}}]}]}", "spec.http[0].match[0].headers.End-User"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{redirect: {uri: /x}, route: [{destination: {host: a}}]}]}", "spec.http[0].redirect"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{}]}", "spec.http[0]"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{route: [{destination: {host: a, port: {number: 70000}}}]}]}", "spec.http[0].route[0].destination.port.number"),
        ("kind: VirtualService\nspec: {hosts: [a.com], http: [{fault: {abort: {httpStatus: 500, percentage: {value: 150}}}, route: [{destination: {host: a}}]}]}", "spec.http[0].fault.abort.percentage"),
        ("kind: Gateway\nspec: {servers: [{port: {number: 0, name: http, protocol: HTTP}, hosts: ['*']}]}", "spec.servers[0].port.number"),
        ("kind: Gateway\nspec: {servers: [{port: {number: 80, name: http, protocol: HTTPX}, hosts: ['*']}]}", "spec.servers[0].port.protocol"),
        ("kind: Gateway\nspec: {servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*']}]}", "spec.servers[0].tls"),
        ("kind: DestinationRule\nspec: {host: a.com, subsets: [{name: v1}, {name: v1}]}", "spec.subsets[1].name"),
        ("kind: DestinationRule\nspec: {host: a.com, trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-east}]}}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to"),
        ("kind: DestinationRule\nspec: {host: a.com, trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us-east/a, to: eu}]}}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].from"),
        ("kind: DestinationRule\nspec: {host: a.com, trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us-east}]}}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to"),
        ("kind: DestinationRule\nspec: {host: a.com, trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: 'us/*', to: {'us/*': 100}}], failover: [{from: us, to: eu}]}}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting"),
        ("kind: DestinationRule\nspec: {host: a.com, subsets: [{name: v1, trafficPolicy: {loadBalancer: {localityLbSetting: {failoverPriority: ['a=b=c']}}}}]}", "spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]"),
        ("kind: DestinationRule\nspec: {host: a.com, trafficPolicy: {portLevelSettings: [{port: {number: 80}, loadBalancer: {localityLbSetting: {failoverPriority: ['']}}}]}}", "spec.trafficPolicy.portLevelSettings[0].loadBalancer.localityLbSetting.failoverPriority[0]"),
        ("kind: ServiceEntry\nspec: {hosts: [a.com], ports: [{number: 80, name: http}], resolution: STATIC, endpoints: [{address: not-an-ip}]}", "spec.endpoints[0].address"),
        ("kind: ServiceEntry\nspec: {hosts: [a.com], ports: [{number: 80, name: http}, {number: 80, name: http2}]}", "spec.ports[1].number"),
        ("kind: ServiceEntry\nspec: {hosts: [a.com], ports: [{number: 80, name: http}], resolution: NONE, endpoints: [{address: 1.2.3.4}]}", "spec.endpoints"),
    ])
    func invalidFieldsAreNamed(body: String, field: String) {
        let found = problems("apiVersion: networking.istio.io/v1\nmetadata: {name: x, namespace: ns}\n" + body)
        #expect(found.map(\.field) == [field], "\(found)")
        #expect(found.first?.resource?.hasSuffix("ns/x") == true)
    }

    @Test func peerAuthenticationPortsNeedASelectorAndRealPortNumbers() {
        let head = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: ns}\n"
        #expect(problems(head + "spec: {mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}").map(\.field) == ["spec.portLevelMtls"])
        #expect(problems(head + "spec: {selector: {matchLabels: {app: a}}, portLevelMtls: {0: {mode: DISABLE}}}").map(\.field) == ["spec.portLevelMtls[0]"])
        #expect(problems(head + "spec: {selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}").isEmpty)
        let unknownMode = IstioYAML.decode(head + "spec: {mtls: {mode: STRICTER}}", file: "v.yaml")
        #expect(unknownMode.resources.isEmpty && unknownMode.errors.count == 1, "\(unknownMode.errors)")
    }

    @Test func validConfigHasNoProblems() {
        let found = problems("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: ok, namespace: ns}
        spec:
          hosts: ["*.example.com", reviews]
          gateways: [gw]
          http:
          - match: [{uri: {regex: "/api/v[0-9]+"}, headers: {end-user: {exact: jason}}}]
            route: [{destination: {host: reviews, subset: v2}, weight: 100}, {destination: {host: reviews, subset: v1}, weight: 0}]
            timeout: 0.5s
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: ok, namespace: ns}
        spec:
          hosts: [httpbin.org]
          ports: [{number: 80, name: http, protocol: HTTP}]
          resolution: DNS
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: ok, namespace: ns}
        spec:
          host: httpbin.org
          trafficPolicy:
            outlierDetection: {consecutive5xxErrors: 1}
            loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: eu-west}], failoverPriority: [version, "topology.istio.io/network=n1"]}}
        """)
        #expect(found.isEmpty, "\(found)")
    }
}
