import EnvoyAPI
import Foundation
import Mesh
import Snapshot
import SwiftProtobuf
import Testing
import Translation
@testable import XDS

/// Route configuration `http.8080` with one virtual host per host (routing to `cluster`), and
/// optionally a second configuration `http.9090`.
private func routes(_ hosts: [String: String], ignorePort: Bool = true, second: [String: String] = [:]) -> EncodedConfig {
    func configuration(_ name: String, _ hosts: [String: String], port: Int) -> RouteConfiguration {
        var configuration = RouteConfiguration()
        configuration.name = name
        configuration.ignorePortInHostMatching = ignorePort
        configuration.virtualHosts = hosts.keys.sorted().map { host in
            var virtualHost = Envoy_Config_Route_V3_VirtualHost()
            virtualHost.name = "\(host):\(port)"
            virtualHost.domains = [host]
            var route = Envoy_Config_Route_V3_Route()
            route.match.prefix = "/"
            route.route.cluster = hosts[host]!
            virtualHost.routes = [route]
            return virtualHost
        }
        return configuration
    }
    var proxy = ProxyConfig()
    proxy.routes = [configuration("http.8080", hosts, port: 8080)]
    if !second.isEmpty { proxy.routes.append(configuration("http.9090", second, port: 9090)) }
    return EncodedConfig(proxy)
}

private let threeHosts = ["a.example.com": "blue", "b.example.com": "blue", "*.wild.example.com": "green"]

private func delta(_ type: XDSType, subscribe: [String] = [], unsubscribe: [String] = [], nonce: String = "") -> DeltaDiscoveryRequest {
    var request = DeltaDiscoveryRequest()
    request.typeURL = type.typeURL
    request.resourceNamesSubscribe = subscribe
    request.resourceNamesUnsubscribe = unsubscribe
    request.responseNonce = nonce
    return request
}

private func virtualHost(_ resource: Envoy_Service_Discovery_V3_Resource) throws -> Envoy_Config_Route_V3_VirtualHost {
    try Envoy_Config_Route_V3_VirtualHost(serializedBytes: resource.resource.value)
}

/// A stream that subscribed to RDS `http.8080` and then VHDS as `vhdsNames` (Envoy's subscription),
/// with both ACKed.
private func subscribedStream(_ config: EncodedConfig, vhdsNames: [String] = ["http.8080"]) -> DeltaStream {
    var stream = DeltaStream(virtualHostDiscovery: true)
    let rds = stream.handle(delta(.route, subscribe: ["http.8080"]), config: config)
    _ = stream.handle(delta(.route, nonce: rds[0].nonce), config: config)
    let vhds = stream.handle(delta(.virtualHost, subscribe: vhdsNames), config: config)
    _ = stream.handle(delta(.virtualHost, nonce: vhds[0].nonce), config: config)
    return stream
}

@Suite struct VirtualHostDiscoveryTests {
    @Test func routeConfigurationGoesOutWithoutVirtualHostsAndWithVHDSOverADS() throws {
        var stream = DeltaStream(virtualHostDiscovery: true)
        let responses = stream.handle(delta(.route, subscribe: ["http.8080"]), config: routes(threeHosts))
        #expect(responses.count == 1)
        let route = try RouteConfiguration(serializedBytes: responses[0].resources[0].resource.value)
        #expect(route.name == "http.8080")
        #expect(route.virtualHosts.isEmpty)
        #expect(route.vhds.configSource.ads == Envoy_Config_Core_V3_AggregatedConfigSource())
        #expect(route.vhds.configSource.resourceApiVersion == .v3)
        #expect(route.ignorePortInHostMatching)
    }

    @Test func subscribingWithTheRouteConfigurationNameSendsItsVirtualHosts() throws {
        let config = routes(threeHosts, second: ["c.example.com": "blue"])
        var stream = DeltaStream(virtualHostDiscovery: true)
        _ = stream.handle(delta(.route, subscribe: ["http.8080", "http.9090"]), config: config)
        let responses = stream.handle(delta(.virtualHost, subscribe: ["http.8080"]), config: config)
        #expect(responses.count == 1)
        #expect(responses[0].typeURL == "type.googleapis.com/envoy.config.route.v3.VirtualHost")
        #expect(responses[0].resources.map(\.name) == ["http.8080/*.wild.example.com:8080", "http.8080/a.example.com:8080", "http.8080/b.example.com:8080"])
        // Envoy keys VHDS virtual hosts by name and removes them by resource name: the two are one.
        for resource in responses[0].resources {
            #expect(try virtualHost(resource).name == resource.name)
        }
        #expect(try virtualHost(responses[0].resources[1]).domains == ["a.example.com"])
    }

    @Test func wildcardSubscriptionSendsTheVirtualHostsOfTheSubscribedRouteConfigurations() {
        let config = routes(threeHosts, second: ["c.example.com": "blue"])
        var stream = DeltaStream(virtualHostDiscovery: true)
        _ = stream.handle(delta(.route, subscribe: ["http.9090"]), config: config)
        let wildcard = stream.handle(delta(.virtualHost), config: config)
        #expect(wildcard.map { $0.resources.map(\.name) } == [["http.9090/c.example.com:9090"]])
        // Subscribing to another route configuration brings its virtual hosts after it.
        let more = stream.handle(delta(.route, subscribe: ["http.8080"]), config: config)
        #expect(more.map(\.typeURL) == [XDSType.route.typeURL, XDSType.virtualHost.typeURL])
        #expect(more[1].resources.count == 3)
    }

    @Test func aVirtualServiceChangeSendsOnlyTheChangedVirtualHost() throws {
        let before = routes(threeHosts)
        var stream = subscribedStream(before)
        var changed = threeHosts
        changed["b.example.com"] = "green"
        let pushed = stream.push(config: routes(changed))
        #expect(pushed.count == 1)
        #expect(pushed[0].typeURL == XDSType.virtualHost.typeURL)
        #expect(pushed[0].resources.map(\.name) == ["http.8080/b.example.com:8080"])
        #expect(try virtualHost(pushed[0].resources[0]).routes[0].route.cluster == "green")
        #expect(pushed[0].removedResources.isEmpty)
        // The same config again: nothing to send.
        #expect(stream.push(config: routes(changed)).isEmpty)
    }

    @Test func aRemovedHostIsNamedInRemovedResources() {
        var stream = subscribedStream(routes(threeHosts))
        var fewer = threeHosts
        fewer.removeValue(forKey: "a.example.com")
        let pushed = stream.push(config: routes(fewer))
        #expect(pushed.count == 1)
        #expect(pushed[0].resources.isEmpty)
        #expect(pushed[0].removedResources == ["http.8080/a.example.com:8080"])
    }

    @Test func aRouteConfigurationChangeResendsAllItsVirtualHosts() throws {
        var stream = subscribedStream(routes(threeHosts))
        let pushed = stream.push(config: routes(threeHosts, ignorePort: false))
        #expect(pushed.map(\.typeURL) == [XDSType.route.typeURL, XDSType.virtualHost.typeURL])
        #expect(try RouteConfiguration(serializedBytes: pushed[0].resources[0].resource.value).ignorePortInHostMatching == false)
        #expect(pushed[1].resources.count == 3)
    }

    @Test func theWildcardSubscriptionAlsoGetsEveryHostAfterARouteConfigurationChange() {
        var stream = subscribedStream(routes(threeHosts), vhdsNames: ["*"])
        let pushed = stream.push(config: routes(threeHosts, ignorePort: false))
        #expect(pushed.map { $0.resources.count } == [1, 3])
    }

    @Test func anOnDemandNameForAServedHostIsAnsweredWithTheHostAndTheNameAsAlias() throws {
        let config = routes(threeHosts)
        var stream = subscribedStream(config)
        let responses = stream.handle(delta(.virtualHost, subscribe: ["http.8080/x.wild.example.com:8080"]), config: config)
        #expect(responses.count == 1)
        let resource = try #require(responses[0].resources.first)
        #expect(resource.name == "http.8080/*.wild.example.com:8080")
        #expect(resource.aliases == ["http.8080/x.wild.example.com:8080"])
        #expect(resource.hasResource)
    }

    @Test func anOnDemandNameForAnUnknownHostIsAnsweredWithNameAndAliasButNoResource() {
        let config = routes(threeHosts)
        var stream = subscribedStream(config)
        let responses = stream.handle(delta(.virtualHost, subscribe: ["http.8080/nowhere.example.org"]), config: config)
        #expect(responses.count == 1)
        #expect(responses[0].resources.count == 1)
        #expect(responses[0].resources[0].name == "http.8080/nowhere.example.org")
        #expect(responses[0].resources[0].aliases == ["http.8080/nowhere.example.org"])
        #expect(!responses[0].resources[0].hasResource)
        #expect(responses[0].removedResources.isEmpty)
    }

    @Test func withoutVirtualHostDiscoveryRouteConfigurationsAreWholeAndVHDSIsEmpty() throws {
        let config = routes(threeHosts)
        var stream = DeltaStream()
        let rds = stream.handle(delta(.route, subscribe: ["http.8080"]), config: config)
        #expect(try RouteConfiguration(serializedBytes: rds[0].resources[0].resource.value).virtualHosts.count == 3)
        #expect(stream.handle(delta(.virtualHost, subscribe: ["http.8080"]), config: config).isEmpty)
    }

    @Test func stateOfTheWorldDoesNotServeVirtualHosts() {
        var stream = SotWStream()
        var request = DiscoveryRequest()
        request.typeURL = XDSType.virtualHost.typeURL
        request.resourceNames = ["http.8080"]
        #expect(stream.handle(request, config: routes(threeHosts)).isEmpty)
        #expect(stream.events == [.unknownType(XDSType.virtualHost.typeURL)])
    }

    @Test func nodeMetadataTurnsVirtualHostDiscoveryOffOrIsRefusedWithTheExpectedValues() throws {
        var node = Envoy_Config_Core_V3_Node()
        #expect(try node.virtualHostDiscovery)
        node.metadata.fields["SWIFTPILOT_VHDS"] = Google_Protobuf_Value(stringValue: "false")
        #expect(try node.virtualHostDiscovery == false)
        node.metadata.fields["SWIFTPILOT_VHDS"] = Google_Protobuf_Value(boolValue: true)
        #expect(try node.virtualHostDiscovery)
        node.metadata.fields["SWIFTPILOT_VHDS"] = Google_Protobuf_Value(stringValue: "sometimes")
        #expect(throws: NodeMetadataError.self) { try node.virtualHostDiscovery }
    }
}

@Suite struct VirtualHostDiscoveryGenerationTests {
    /// A delta stream with VHDS that subscribed to everything like Envoy and ACKed it all.
    func syncedStream(_ config: EncodedConfig) -> DeltaStream {
        var stream = DeltaStream(virtualHostDiscovery: true)
        let subscriptions: [(XDSType, [String])] = [
            (.cluster, []), (.endpoint, config[.endpoint].keys.sorted()), (.listener, []), (.route, config[.route].keys.sorted()), (.virtualHost, ["*"]),
        ]
        for (type, names) in subscriptions {
            for response in stream.handle(delta(type, subscribe: names), config: config) {
                _ = stream.handle(delta(XDSType(rawValue: response.typeURL)!, nonce: response.nonce), config: config)
            }
        }
        return stream
    }

    @Test func wholeRouteConfigurationsAssembledFromTheirVirtualHostsAreTheirOwnEncoding() throws {
        let model = MeshModel(snapshot: snapshot(mesh()))
        var routes = Translator.config(for: Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"]), in: model).routes
        routes += Translator.config(for: Proxy(kind: .sidecar, namespace: "shop", isProxylessGRPC: true), in: model).routes
        var unnamed = RouteConfiguration()
        var host = Envoy_Config_Route_V3_VirtualHost()
        host.domains = ["*"]
        unnamed.virtualHosts = [host, host]
        unnamed.validateClusters = Google_Protobuf_BoolValue(false)
        routes.append(unnamed)
        var long = RouteConfiguration()
        long.name = String(repeating: "r", count: 300)
        long.virtualHosts = (0..<3).map { index in
            var host = Envoy_Config_Route_V3_VirtualHost()
            host.name = String(repeating: "h", count: 200 + index)
            host.domains = [String(repeating: "d", count: 1000)]
            return host
        }
        routes.append(long)
        #expect(routes.count >= 4)
        let encoded = EncodedConfig(ProxyConfig(routes: routes))
        for configuration in routes {
            let whole = try #require(encoded[.route][configuration.name])
            #expect(whole.any.value == Data(Packing.deterministicBytes(configuration)), "\(configuration.name)")
            #expect(whole.any.typeURL == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration")
        }
    }

    @Test func aVirtualServiceChangeInADerivedGenerationSendsOnlyTheChangedVirtualHost() throws {
        let router = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"])
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        let before = old.config(for: router)
        #expect(before[.virtualHost].keys.sorted() == ["http.8080/reviews.shop.svc.cluster.local:8080"])
        var stream = syncedStream(before)
        #expect(stream.push(config: before).isEmpty)

        let next = ConfigGeneration(snapshot: snapshot(mesh(canaryHeader: "always"), version: 2), previous: old)
        let after = next.config(for: router)
        #expect(after.changedNames(.virtualHost, since: before) == ["http.8080/reviews.shop.svc.cluster.local:8080"])
        let pushed = stream.push(config: after)
        #expect(pushed.map(\.typeURL) == [XDSType.virtualHost.typeURL])
        #expect(pushed.first?.resources.map(\.name) == ["http.8080/reviews.shop.svc.cluster.local:8080"])
        let host = try virtualHost(try #require(pushed.first?.resources.first))
        #expect(host.routes.first?.match.headers.first?.stringMatch.exact == "always")
        // And the config after that, derived again, with nothing new for this proxy.
        #expect(stream.push(config: after).isEmpty)
    }

    @Test func aHostRemovedInADerivedGenerationIsRemovedFromTheProxy() {
        let router = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"])
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        var stream = syncedStream(old.config(for: router))
        let withoutRoutes = mesh().components(separatedBy: "---\n").filter { !$0.contains("kind: VirtualService") }.joined(separator: "---\n")
        let next = ConfigGeneration(snapshot: snapshot(withoutRoutes, version: 2), previous: old)
        let pushed = stream.push(config: next.config(for: router))
        let vhds = pushed.first { $0.typeURL == XDSType.virtualHost.typeURL }
        #expect(vhds?.removedResources == ["http.8080/reviews.shop.svc.cluster.local:8080"])
    }

    @Test func aClientHoldingItsClassesResourcesKeepsTheClassesVersionMapThroughDerivedPushes() {
        let router = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"])
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        let before = old.config(for: router)
        var stream = syncedStream(before)
        for type in [XDSType.cluster, .endpoint, .listener, .virtualHost] {
            #expect(stream.state(type)?.knownIsShared == true, "\(type.shortName)")
            #expect(stream.state(type)?.known == before.versions[type])
        }
        // VHDS route configurations are not the class's: each stream keeps its own map.
        #expect(stream.state(.route)?.knownIsShared == false)

        let next = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"), version: 2), previous: old)
        let after = next.config(for: router)
        let pushed = stream.push(config: after)
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(stream.state(.endpoint)?.knownIsShared == true)
        #expect(stream.state(.endpoint)?.known == after.versions[.endpoint])
        #expect(stream.state(.endpoint)?.known != before.versions[.endpoint])
    }
}

@Suite struct VirtualHostProvenanceTests {
    @Test func aRejectedVirtualHostIsTracedToItsGatewayAndTheVirtualServiceOfItsHost() {
        let router = Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"])
        let model = MeshModel(snapshot: snapshot(mesh()))
        let sources = Provenance.sources(of: .virtualHost, name: "http.8080/reviews.shop.svc.cluster.local:8080", for: router, in: model)
        #expect(sources == [ConfigKey(kind: .gateway, namespace: "istio-system", name: "gw"),
                            ConfigKey(kind: .virtualService, namespace: "shop", name: "reviews")])
        let elsewhere = Provenance.sources(of: .virtualHost, name: "http.8080/other.example.com:8080", for: router, in: model)
        #expect(elsewhere == [ConfigKey(kind: .gateway, namespace: "istio-system", name: "gw")])
    }

}
