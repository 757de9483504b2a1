import EnvoyAPI
import Mesh
import Testing
import Translation
@testable import XDS

/// Config with EDS clusters `c0…cN-1`, their assignments, one listener and one route.
func config(clusters: Int = 2, endpointPort: UInt32 = 8000, route: String = "r1") -> EncodedConfig {
    var proxy = ProxyConfig()
    for index in 0..<clusters {
        var cluster = Cluster()
        cluster.name = "c\(index)"
        cluster.type = .eds
        proxy.clusters.append(cluster)
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = "c\(index)"
        var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
        var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
        var target = Envoy_Config_Endpoint_V3_Endpoint()
        target.address = .socket("127.0.0.1", port: endpointPort)
        endpoint.endpoint = target
        group.lbEndpoints = [endpoint]
        assignment.endpoints = [group]
        proxy.endpoints.append(assignment)
    }
    proxy.listeners = [ListenerBuilder.httpListener(port: 8080, routeName: "http.8080")]
    var routeConfiguration = RouteConfiguration()
    routeConfiguration.name = "http.8080"
    var host = Envoy_Config_Route_V3_VirtualHost()
    host.name = route
    host.domains = ["*"]
    routeConfiguration.virtualHosts = [host]
    proxy.routes = [routeConfiguration]
    return EncodedConfig(proxy)
}

func request(_ type: XDSType, names: [String] = [], nonce: String = "", version: String = "", error: String? = nil) -> DiscoveryRequest {
    var request = DiscoveryRequest()
    request.typeURL = type.typeURL
    request.resourceNames = names
    request.responseNonce = nonce
    request.versionInfo = version
    if let error {
        request.errorDetail.code = 3
        request.errorDetail.message = error
    }
    return request
}

func names(_ response: SotWResponse) -> [String] {
    response.resources.map { any in
        switch any.typeURL {
        case XDSType.cluster.typeURL: (try? Cluster(serializedBytes: any.value))?.name ?? "?"
        case XDSType.endpoint.typeURL: (try? ClusterLoadAssignment(serializedBytes: any.value))?.clusterName ?? "?"
        case XDSType.listener.typeURL: (try? Listener(serializedBytes: any.value))?.name ?? "?"
        default: (try? RouteConfiguration(serializedBytes: any.value))?.name ?? "?"
        }
    }
}

@Suite struct SotWStreamTests {
    /// Subscribes like Envoy: CDS wildcard, EDS for the clusters, LDS wildcard, RDS by name; ACKs everything.
    func subscribed(_ stream: inout SotWStream, _ config: EncodedConfig) -> [XDSType: SotWResponse] {
        var last: [XDSType: SotWResponse] = [:]
        for response in stream.handle(request(.cluster), config: config) { last[XDSType(rawValue: response.typeURL)!] = response }
        _ = stream.handle(request(.cluster, nonce: last[.cluster]!.nonce, version: last[.cluster]!.versionInfo), config: config)
        for response in stream.handle(request(.endpoint, names: ["c0", "c1"]), config: config) { last[.endpoint] = response }
        _ = stream.handle(request(.endpoint, names: ["c0", "c1"], nonce: last[.endpoint]!.nonce, version: last[.endpoint]!.versionInfo), config: config)
        for response in stream.handle(request(.listener), config: config) { last[.listener] = response }
        _ = stream.handle(request(.listener, nonce: last[.listener]!.nonce, version: last[.listener]!.versionInfo), config: config)
        for response in stream.handle(request(.route, names: ["http.8080"]), config: config) { last[.route] = response }
        _ = stream.handle(request(.route, names: ["http.8080"], nonce: last[.route]!.nonce, version: last[.route]!.versionInfo), config: config)
        return last
    }

    @Test func initialWildcardRequestGetsTheFullSet() {
        var stream = SotWStream()
        let responses = stream.handle(request(.cluster), config: config(clusters: 3))
        #expect(responses.count == 1)
        #expect(names(responses[0]) == ["c0", "c1", "c2"])
        #expect(!responses[0].nonce.isEmpty && !responses[0].versionInfo.isEmpty)
    }

    @Test func ackWithUnchangedSubscriptionIsNotAnswered() {
        var stream = SotWStream()
        let first = stream.handle(request(.cluster), config: config())[0]
        let answer = stream.handle(request(.cluster, nonce: first.nonce, version: first.versionInfo), config: config())
        #expect(answer.isEmpty)
        #expect(stream.events == [.ack(.cluster, nonce: first.nonce)])
        #expect(stream.state(.cluster)?.ackedVersion == first.versionInfo)
    }

    @Test func aRequestNamesExactlyTheTypesResourcesInAnyOrderWithNoNameTwice() {
        let current = config(clusters: 3)
        #expect(current.namesExactly(["c2", "c0", "c1"], of: .endpoint))
        #expect(!current.namesExactly(["c0", "c1"], of: .endpoint), "one missing")
        #expect(!current.namesExactly(["c0", "c1", "c2", "c3"], of: .endpoint), "one extra")
        #expect(!current.namesExactly(["c0", "c0", "c2"], of: .endpoint), "same count, one name twice")
        #expect(!current.namesExactly(["c0", "c1", "*"], of: .endpoint))
        #expect(!current.namesExactly([], of: .endpoint))
    }

    @Test func anEndpointACKNamingAClusterTwiceInPlaceOfAnotherNarrowsTheSubscription() {
        var stream = SotWStream()
        let current = config(clusters: 3)
        let first = stream.handle(request(.endpoint, names: ["c0", "c1", "c2"]), config: current)[0]
        #expect(names(first) == ["c0", "c1", "c2"])
        #expect(stream.state(.endpoint)?.names == current.names[.endpoint])
        // Same count as the config's clusters, but c2 is gone: not taken for "all of them".
        let answer = stream.handle(request(.endpoint, names: ["c1", "c0", "c1"], nonce: first.nonce, version: first.versionInfo),
                                   config: current)
        #expect(stream.state(.endpoint)?.names == ["c0", "c1"])
        #expect(answer.count == 1, "a changed subscription is answered (EDS answers cover every EDS cluster)")
        // Back to every cluster, in another order: the class's set is shared again.
        let again = stream.handle(request(.endpoint, names: ["c2", "c1", "c0"], nonce: answer[0].nonce, version: answer[0].versionInfo),
                                  config: current)
        #expect(again.count == 1)
        #expect(stream.state(.endpoint)?.names == current.names[.endpoint])
        // And an ACK of that, unchanged: not answered.
        #expect(stream.handle(request(.endpoint, names: ["c0", "c2", "c1"], nonce: again[0].nonce, version: again[0].versionInfo),
                              config: current).isEmpty)
    }

    @Test func staleNonceIsIgnored() {
        var stream = SotWStream()
        let first = stream.handle(request(.route, names: ["http.8080"]), config: config())[0]
        // A request that changes the names is answered at once, with a second response.
        let second = stream.handle(request(.route, names: ["http.8080", "a"], nonce: first.nonce), config: config(route: "r2"))
        #expect(second.count == 1 && second[0].nonce != first.nonce)
        // A request still carrying the first nonce crosses the second response: ignored.
        let answer = stream.handle(request(.route, names: ["http.8080", "b"], nonce: first.nonce), config: config(route: "r3"))
        #expect(answer.isEmpty)
        #expect(stream.events == [.stale(.route)])
    }

    /// One pushed response per type in flight: a push waits for the answer to the last one, and
    /// the answer (ACK or NACK) brings the newest config of that type.
    @Test func aPushWaitsForTheAnswerToTheResponseInFlight() {
        var stream = SotWStream()
        _ = subscribed(&stream, config())
        let pushed = stream.push(config: config(route: "r2"))
        #expect(pushed.map(\.typeURL) == [XDSType.route.typeURL])
        #expect(stream.state(.route)?.awaitingAnswer == true)
        // Two more generations while r2 is in flight: nothing goes out.
        #expect(stream.push(config: config(route: "r3")).isEmpty)
        #expect(stream.push(config: config(route: "r4")).isEmpty)
        #expect(stream.pushDeferred)
        // A stale request does not release it.
        #expect(stream.handle(request(.route, names: ["http.8080"], nonce: "0"), config: config(route: "r4")).isEmpty)
        // The ACK of r2 brings r4, the newest, once.
        let next = stream.handle(request(.route, names: ["http.8080"], nonce: pushed[0].nonce, version: pushed[0].versionInfo),
                                 config: config(route: "r4"))
        #expect(next.map(\.typeURL) == [XDSType.route.typeURL])
        #expect(next.first?.versionInfo == config(route: "r4").fullVersion[.route])
        #expect(stream.events == [.ack(.route, nonce: pushed[0].nonce)])
        #expect(!stream.pushDeferred)
        // A NACK answers too: r5, pushed while r4 was in flight, follows it.
        #expect(stream.push(config: config(route: "r5")).isEmpty)
        let afterNack = stream.handle(request(.route, names: ["http.8080"], nonce: next[0].nonce, version: pushed[0].versionInfo, error: "no"),
                                      config: config(route: "r5"))
        #expect(afterNack.first?.versionInfo == config(route: "r5").fullVersion[.route])
    }

    /// Only the type in flight waits: Envoy does not answer an empty response of a type it no
    /// longer watches, which must not hold the others back.
    @Test func aTypeInFlightHoldsOnlyItself() {
        var stream = SotWStream()
        _ = subscribed(&stream, config())
        let endpoints = stream.push(config: config(endpointPort: 2))
        #expect(endpoints.map(\.typeURL) == [XDSType.endpoint.typeURL])
        let routes = stream.push(config: config(endpointPort: 3, route: "r2"))
        #expect(routes.map(\.typeURL) == [XDSType.route.typeURL], "RDS goes; EDS waits for its answer")
        let released = stream.handle(request(.endpoint, names: ["c0", "c1"], nonce: endpoints[0].nonce, version: endpoints[0].versionInfo),
                                     config: config(endpointPort: 3, route: "r2"))
        #expect(released.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(released.first?.versionInfo == config(endpointPort: 3).fullVersion[.endpoint])
    }

    /// A CDS push while EDS is in flight: the EDS response owed to the clusters (they warm on it)
    /// goes out with the answer, even when the assignments did not change.
    @Test func endpointsOwedToAClusterPushWaitForTheirAnswer() {
        var stream = SotWStream()
        _ = subscribed(&stream, config(clusters: 2))
        let endpoints = stream.push(config: config(clusters: 2, endpointPort: 2))
        #expect(endpoints.map(\.typeURL) == [XDSType.endpoint.typeURL])
        // The clusters change; their assignments are those already in flight.
        var changed = ProxyConfig()
        var cluster = Cluster()
        cluster.name = "c0"
        cluster.type = .eds
        cluster.connectTimeout.seconds = 7
        changed.clusters = [cluster, { var other = Cluster(); other.name = "c1"; other.type = .eds; return other }()]
        let base = config(clusters: 2, endpointPort: 2)
        changed.endpoints = base[.endpoint].values.compactMap { try? ClusterLoadAssignment(serializedBytes: $0.any.value) }
        changed.listeners = base[.listener].values.compactMap { try? Listener(serializedBytes: $0.any.value) }
        changed.routes = base[.route].values.compactMap { try? RouteConfiguration(serializedBytes: $0.any.value) }
        let next = EncodedConfig(changed)
        #expect(next.fullVersion[.endpoint] == base.fullVersion[.endpoint])
        #expect(stream.push(config: next).map(\.typeURL) == [XDSType.cluster.typeURL])
        let owed = stream.handle(request(.endpoint, names: ["c0", "c1"], nonce: endpoints[0].nonce, version: endpoints[0].versionInfo), config: next)
        #expect(owed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(owed.first.map { names($0).sorted() } == ["c0", "c1"])
    }

    @Test func nackIsRecordedAndTheRejectedVersionIsNotResent() {
        var stream = SotWStream()
        var current = config()
        _ = subscribed(&stream, current)
        current = config(route: "bad")
        let pushed = stream.push(config: current)
        #expect(pushed.map(\.typeURL) == [XDSType.route.typeURL])
        let answer = stream.handle(request(.route, names: ["http.8080"], nonce: pushed[0].nonce, version: "old", error: "rejected"), config: current)
        #expect(answer.isEmpty)
        #expect(stream.events == [.nack(.route, nonce: pushed[0].nonce, message: "rejected")])
        #expect(stream.state(.route)?.nack == "rejected")
        // Same config again (any other trigger): nothing is resent.
        #expect(stream.push(config: current).isEmpty)
        // A new config is sent.
        let fixed = stream.push(config: config(route: "fixed"))
        #expect(fixed.map(\.typeURL) == [XDSType.route.typeURL])
    }

    @Test func clusterChangeIsFollowedByEndpointsEvenWhenUnchanged() {
        var stream = SotWStream()
        _ = subscribed(&stream, config(clusters: 2))
        let pushed = stream.push(config: config(clusters: 3))
        #expect(pushed.map(\.typeURL) == [XDSType.cluster.typeURL, XDSType.endpoint.typeURL])
        #expect(names(pushed[1]).contains("c2"), "the new cluster's endpoints come with the push so it can warm")
    }

    @Test func pushesGoInMakeBeforeBreakOrder() {
        var stream = SotWStream()
        _ = subscribed(&stream, config(clusters: 2, endpointPort: 1, route: "a"))
        var changed = config(clusters: 3, endpointPort: 2, route: "b")
        changed.resources[.listener] = EncodedConfig.index([EncodedResource(name: "0.0.0.0_9090", message: ListenerBuilder.httpListener(port: 9090, routeName: "http.8080"))])
        let pushed = stream.push(config: changed)
        #expect(pushed.map { XDSType(rawValue: $0.typeURL)! } == [.cluster, .endpoint, .listener, .route])
    }

    @Test func endpointChangeTouchesOnlyEDS() {
        var stream = SotWStream()
        _ = subscribed(&stream, config(endpointPort: 1))
        let pushed = stream.push(config: config(endpointPort: 2))
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
    }

    @Test func aProxylessServerGetsTheInboundListenerItNames() throws {
        var proxyless = ProxyConfig()
        proxyless.inboundMutualTLS = InboundMutualTLS(mode: .permissive, ports: [7070: .strict])
        let config = EncodedConfig(proxyless)
        var stream = SotWStream()
        let name = "xds.istio.io/grpc/lds/inbound/127.0.0.1:7070"
        let first = stream.handle(request(.listener, names: [name, "unknown.example.com:80"]), config: config)
        #expect(first.count == 1 && names(first[0]) == [name], "an unknown name is simply absent")
        let listener = try Listener(serializedBytes: first[0].resources[0].value)
        #expect(listener.filterChains.map(\.name) == ["inbound-mtls"])
        // Built again for the same config, it is the same resource: the ACK is not answered.
        #expect(stream.handle(request(.listener, names: [name, "unknown.example.com:80"], nonce: first[0].nonce,
                                      version: first[0].versionInfo), config: config).isEmpty)
        #expect(EncodedConfig(ProxyConfig()).resource(.listener, named: name) == nil, "only proxyless configs build them")
    }

    @Test func subscriptionChangeOnAckIsAnswered() {
        var stream = SotWStream()
        let current = config(clusters: 3)
        let first = stream.handle(request(.endpoint, names: ["c0"]), config: current)[0]
        #expect(names(first) == ["c0", "c1", "c2"] || names(first) == ["c0"])
        let answer = stream.handle(request(.endpoint, names: ["c0", "c1"], nonce: first.nonce, version: first.versionInfo), config: current)
        #expect(answer.count == 1)
    }

    @Test func unsubscribingFromRoutesNarrowsTheResponse() {
        var stream = SotWStream()
        var current = config()
        var extra = RouteConfiguration()
        extra.name = "http.9090"
        current.resources[.route]!["http.9090"] = EncodedResource(name: "http.9090", message: extra)
        let first = stream.handle(request(.route, names: ["http.8080", "http.9090"]), config: current)[0]
        #expect(names(first) == ["http.8080", "http.9090"])
        let narrowed = stream.handle(request(.route, names: ["http.9090"], nonce: first.nonce, version: first.versionInfo), config: current)
        #expect(narrowed.count == 1)
        #expect(names(narrowed[0]) == ["http.9090"])
    }

    @Test func aNonceThisStreamNeverIssuedStartsASubscription() {
        var stream = SotWStream()
        // istiod's MCP client puts a timestamp in the nonce of its first requests.
        let responses = stream.handle(request(.cluster, nonce: "2026-11-27 08:00:00 +0000 UTC"), config: config())
        #expect(responses.count == 1)
    }

    @Test func versionsAreStableForTheSameContent() {
        var a = SotWStream()
        var b = SotWStream()
        let first = a.handle(request(.cluster), config: config())[0]
        let second = b.handle(request(.cluster), config: config())[0]
        #expect(first.versionInfo == second.versionInfo)
    }

    @Test func endpointPushCarriesOnlyTheChangedAssignment() {
        var stream = SotWStream()
        let current = config(clusters: 3)
        _ = subscribed(&stream, current)
        var changed = current
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = "c1"
        changed.resources[.endpoint]!["c1"] = EncodedResource(name: "c1", message: assignment)
        let pushed = stream.push(config: changed)
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(names(pushed[0]) == ["c1"], "state of the world allows EDS responses with only the changed assignments")
    }

    @Test func afterANackTheNextPushComparesWithWhatTheProxyAcked() {
        var stream = SotWStream()
        let current = config(clusters: 2)
        _ = subscribed(&stream, current)
        var bad = current
        var a = ClusterLoadAssignment()
        a.clusterName = "c0"
        bad.resources[.endpoint]!["c0"] = EncodedResource(name: "c0", message: a)
        var b = ClusterLoadAssignment()
        b.clusterName = "c1"
        bad.resources[.endpoint]!["c1"] = EncodedResource(name: "c1", message: b)
        let rejected = stream.push(config: bad)
        _ = stream.handle(request(.endpoint, names: ["c0", "c1"], nonce: rejected[0].nonce, error: "no"), config: bad)
        // The proxy rejected the whole response, so it still holds the ACKed c0 and c1. Now c0 is
        // back to what it holds and c1 is still new: the push compares with what the proxy ACKed.
        var fixed = bad
        fixed.resources[.endpoint]!["c0"] = current[.endpoint]["c0"]
        let pushed = stream.push(config: fixed)
        #expect(names(pushed[0]) == ["c1"], "c1 was only ever sent in the rejected response")
    }
}
