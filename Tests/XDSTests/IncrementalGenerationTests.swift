import MCP
@testable import Mesh
import Snapshot
import Testing
@testable import Translation
@testable import XDS

/// A snapshot of some Istio YAML (decoding must succeed).
func snapshot(_ yaml: String, version: UInt64 = 1) -> Snapshot {
    snapshot(yaml, after: .empty)
}

/// The snapshot a store reaches from `previous` when every collection is replaced by the YAML's:
/// collections whose content did not change keep their revision.
func snapshot(_ yaml: String, after previous: Snapshot) -> Snapshot {
    let decoded = IstioYAML.decode(yaml, file: "test.yaml")
    #expect(decoded.errors.isEmpty, "\(decoded.errors)")
    var byKind: [ConfigKind: SnapshotUpdate.Change] = [:]
    for kind in ConfigKind.allCases { byKind[kind] = .replace(decoded.resources.filter { $0.key.kind == kind }) }
    return previous.applying(SnapshotUpdate(byKind)).snapshot
}

func mesh(reviewsV2Address: String = "10.0.0.2", canaryHeader: String = "yes", v2Weight: Int = 3,
          subsetLabel: String = "v2", dnsAddress: String = "db.example.com", hashHeader: String? = nil, secondPort: Bool = false) -> String {
    let policy = hashHeader.map { "\n  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: \($0)}}}" } ?? ""
    let secondPort = secondPort ? ", {number: 9443, name: http-alt, protocol: HTTP}" : ""
    return """
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: gw, namespace: istio-system}
    spec:
      selector: {istio: ingressgateway}
      servers:
      - port: {number: 8080, name: http, protocol: HTTP}
        hosts: ["*.example.com", "reviews.shop.svc.cluster.local"]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: reviews, namespace: shop}
    spec:
      hosts: [reviews.shop.svc.cluster.local]
      resolution: STATIC
      ports: [{number: 9080, name: http, protocol: HTTP}\(secondPort)]
      endpoints:
      - {address: 10.0.0.1, labels: {version: v1}, locality: eu/west-1/a}
      - {address: \(reviewsV2Address), labels: {version: v2}, weight: \(v2Weight)}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: db, namespace: shop}
    spec:
      hosts: [db.shop.svc.cluster.local]
      resolution: DNS
      ports: [{number: 5432, name: tcp, protocol: TCP}]
      endpoints: [{address: \(dnsAddress)}]
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: shop}
    spec:
      host: reviews.shop.svc.cluster.local\(policy)
      subsets:
      - {name: v1, labels: {version: v1}}
      - {name: v2, labels: {version: \(subsetLabel)}}
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews, namespace: shop}
    spec:
      hosts: [reviews.shop.svc.cluster.local]
      gateways: [istio-system/gw, mesh]
      http:
      - match: [{headers: {x-canary: {exact: "\(canaryHeader)"}}}]
        route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
      - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v1}}]
    """
}

/// A second VirtualService on the gateway, for `ratings.example.com` (appended to `mesh()`).
private let ratings = """

---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings.example.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
"""

private let proxies = [
    Proxy(kind: .router, namespace: "istio-system", labels: ["istio": "ingressgateway"]),
    Proxy(kind: .sidecar, namespace: "shop", labels: ["app": "web"]),
    Proxy(kind: .sidecar, namespace: "shop", labels: [:], isProxylessGRPC: true),
]

@Suite struct IncrementalGenerationTests {
    /// The generation brought forward from `before` serves exactly what a fresh translation of
    /// `after` would, for routers, sidecars and proxyless clients.
    func expectBroughtForwardEqualsFresh(from before: String, to after: String) {
        expectBroughtForwardEqualsFresh(through: [before, after])
    }

    /// Each generation brought forward from the one before along `steps` serves exactly what a
    /// fresh translation of its step would. Both when each snapshot is unrelated to the one before
    /// and when it is the one before with the changed collections replaced (as from a store: the
    /// model reuses the others).
    func expectBroughtForwardEqualsFresh(through steps: [String]) {
        let first = snapshot(steps[0])
        let start = ConfigGeneration(snapshot: first)
        for proxy in proxies { _ = start.config(for: proxy) }
        for fromStore in [false, true] {
            var (previous, previousSnapshot) = (start, first)
            for (index, yaml) in steps.enumerated().dropFirst() {
                let nextSnapshot = fromStore ? snapshot(yaml, after: previousSnapshot) : snapshot(yaml, version: UInt64(index + 1))
                let next = ConfigGeneration(snapshot: nextSnapshot, previous: previous)
                let fresh = ConfigGeneration(snapshot: snapshot(yaml, version: UInt64(index + 1)))
                for proxy in proxies {
                    let (carried, expected) = (next.config(for: proxy), fresh.config(for: proxy))
                    for type in XDSType.allCases {
                        #expect(carried[type] == expected[type], "step \(index) \(proxy.kind) proxyless=\(proxy.isProxylessGRPC) \(type.shortName)")
                        #expect(carried.fullVersion[type] == expected.fullVersion[type])
                        #expect(carried.sorted(type).map(\.hash) == expected.sorted(type).map(\.hash))
                        #expect(carried.versions[type] == expected.versions[type] && carried.names[type] == expected.names[type])
                        #expect(carried.blocks[type]?.bodyBytes == expected.blocks[type]?.bodyBytes, "the bytes a push of the whole type reports")
                    }
                }
                #expect(next.diagnostics.map(\.description) == fresh.diagnostics.map(\.description))
                (previous, previousSnapshot) = (next, nextSnapshot)
            }
        }
    }

    @Test func anEndpointChangeRebuildsOnlyThatServicesAssignments() {
        let change = MeshChange(from: MeshModel(snapshot: snapshot(mesh())), to: MeshModel(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"))))
        #expect(change == MeshChange(endpointHosts: ["reviews.shop.svc.cluster.local"]))
        // From a store: only the ServiceEntry collection is new; the rest of the model is reused.
        let first = snapshot(mesh())
        let second = snapshot(mesh(reviewsV2Address: "10.0.0.9"), after: first)
        #expect(second[.virtualService].revision == first[.virtualService].revision)
        #expect(second[.serviceEntry].revision != first[.serviceEntry].revision)
        let old = MeshModel(snapshot: first)
        #expect(MeshChange(from: old, to: MeshModel(snapshot: second, previous: old)) == change)
        expectBroughtForwardEqualsFresh(from: mesh(), to: mesh(reviewsV2Address: "10.0.0.9"))
        expectBroughtForwardEqualsFresh(from: mesh(), to: mesh(v2Weight: 7))
    }

    @Test func aVirtualServiceChangeRebuildsListenersAndRoutes() {
        let change = MeshChange(from: MeshModel(snapshot: snapshot(mesh())), to: MeshModel(snapshot: snapshot(mesh(canaryHeader: "always"))))
        #expect(change == MeshChange(routing: true))
        expectBroughtForwardEqualsFresh(from: mesh(), to: mesh(canaryHeader: "always"))
    }

    @Test func aVirtualServiceEditAfterAnEndpointChangeStillBuildsOnlyItsHost() {
        let steps = [mesh() + ratings, mesh(reviewsV2Address: "10.0.0.9") + ratings, mesh(reviewsV2Address: "10.0.0.9", canaryHeader: "always") + ratings]
        var snapshots = [snapshot(steps[0])]
        var generations = [ConfigGeneration(snapshot: snapshots[0])]
        _ = generations[0].config(for: proxies[0])
        for yaml in steps.dropFirst() {
            snapshots.append(snapshot(yaml, after: snapshots.last!))
            generations.append(ConfigGeneration(snapshot: snapshots.last!, previous: generations.last!))
        }
        #expect(generations[1].routeMemo === generations[0].routeMemo, "an endpoint change leaves routing as it was")
        #expect(generations[2].routeMemo.builtHosts.withLock { $0 } == ["reviews.shop.svc.cluster.local"],
                "the memo survives the endpoint change: the edit builds its host alone")
        #expect(generations[2].config(for: proxies[0])[.virtualHost] == ConfigGeneration(snapshot: snapshot(steps[2])).config(for: proxies[0])[.virtualHost])
    }

    @Test func aVirtualServiceChangeLeavesTheOtherVirtualHostsAsTheyWere() {
        expectBroughtForwardEqualsFresh(from: mesh() + ratings, to: mesh(canaryHeader: "always") + ratings)
        // A VirtualService removed takes its virtual host along; added again, brings it back.
        expectBroughtForwardEqualsFresh(through: [mesh() + ratings, mesh(canaryHeader: "always"), mesh(canaryHeader: "always") + ratings,
                                                  mesh() + ratings])
        let old = ConfigGeneration(snapshot: snapshot(mesh() + ratings))
        let before = old.config(for: proxies[0])
        let after = ConfigGeneration(snapshot: snapshot(mesh(canaryHeader: "always") + ratings, after: snapshot(mesh() + ratings)),
                                     previous: old).config(for: proxies[0])
        #expect(before[.virtualHost].count == 2)
        #expect(after.changedNames(.virtualHost, since: before) == ["http.8080/reviews.shop.svc.cluster.local:8080"])
    }

    /// A root VirtualService on the gateway whose one rule is delegated to a VirtualService routing to `subset`.
    func delegated(to subset: String) -> String {
        """

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: front, namespace: shop}
        spec:
          hosts: [front.example.com]
          gateways: [istio-system/gw]
          http:
          - match: [{uri: {prefix: /reviews}}]
            delegate: {name: reviews-routes, namespace: shop}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews-routes, namespace: shop}
        spec:
          http:
          - route: [{destination: {host: reviews.shop.svc.cluster.local, subset: \(subset)}}]
        """
    }

    @Test func routesKeptFromTheGenerationBeforeFollowWhatElseTheyRead() {
        // Each step changes one thing the gateway's routes read; every generation is brought
        // forward from the one before, so routes kept across steps must not go stale.
        // The gateway's routes read, besides their VirtualService, the DestinationRule's consistent
        // hash, the service's ports (a destination without a port takes the only one), and delegates.
        expectBroughtForwardEqualsFresh(through: [
            mesh() + delegated(to: "v1"),
            mesh(canaryHeader: "always") + delegated(to: "v1"),
            mesh(canaryHeader: "always", hashHeader: "x-user") + delegated(to: "v1"),
            mesh(canaryHeader: "always", hashHeader: "x-user") + delegated(to: "v2"),
            mesh(canaryHeader: "always", hashHeader: "x-user", secondPort: true) + delegated(to: "v2"),
            mesh(hashHeader: "x-session", secondPort: true) + delegated(to: "v2"),
            mesh() + delegated(to: "v1"),
        ])
        // And the changes do reach the routes (else the comparison above would prove little).
        let routes = { (yaml: String) in ConfigGeneration(snapshot: snapshot(yaml)).config(for: proxies[0])[.route] }
        let plain = routes(mesh() + delegated(to: "v1"))
        #expect(routes(mesh(hashHeader: "x-user") + delegated(to: "v1")) != plain)
        #expect(routes(mesh(secondPort: true) + delegated(to: "v1")) != plain)
        #expect(routes(mesh() + delegated(to: "v2")) != plain)
    }

    @Test func changesThatShapeClustersRebuildEverything() {
        let before = MeshModel(snapshot: snapshot(mesh()))
        // DNS endpoints live inside the cluster; subsets decide which assignments exist.
        #expect(MeshChange(from: before, to: MeshModel(snapshot: snapshot(mesh(dnsAddress: "db2.example.com")))).everything)
        #expect(MeshChange(from: before, to: MeshModel(snapshot: snapshot(mesh(subsetLabel: "v3")))).everything)
        expectBroughtForwardEqualsFresh(from: mesh(), to: mesh(dnsAddress: "db2.example.com"))
        expectBroughtForwardEqualsFresh(from: mesh(), to: mesh(subsetLabel: "v3"))
    }

    @Test func noChangeKeepsTheEncodedConfig() {
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        let first = old.config(for: proxies[0])
        let next = ConfigGeneration(snapshot: snapshot(mesh(), version: 2), previous: old)
        #expect(MeshChange(from: old.model, to: next.model).isEmpty)
        #expect(next.config(for: proxies[0])[.route] == first[.route])
    }

    @Test func aPushFromABroughtForwardConfigCarriesOnlyTheChangedAssignments() {
        let router = proxies[0]
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        let before = old.config(for: router)
        var stream = SotWStream()
        for type in XDSType.allCases {
            let names = type == .endpoint ? before[.endpoint].keys.sorted() : type == .route ? ["http.8080"] : []
            guard let response = stream.handle(request(type, names: names), config: before).last else { continue }
            // The whole type (CDS and LDS wildcards, EDS): the class's encoded block; RDS by name: its own.
            #expect((response.block != nil) == (type != .route), "\(type)")
            #expect(response.block == nil || response.block === before.blocks[type])
            _ = stream.handle(request(type, names: names, nonce: response.nonce, version: response.versionInfo), config: before)
        }
        let next = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"), version: 2), previous: old)
        let after = next.config(for: router)
        #expect(after.changedNames(.endpoint, since: before)?.sorted()
            == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
        let pushed = stream.push(config: after)
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(pushed.first?.block == nil)
        #expect(pushed.first.map(names) == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
        #expect(pushed.first?.versionInfo == after.fullVersion[.endpoint])
    }

    @Test func aDeltaStreamsFirstSubscriptionsGoAsTheClassesBlocksAndPushesCarryOnlyWhatChanged() throws {
        let router = proxies[0]
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        let before = old.config(for: router)
        var stream = DeltaStream()
        func subscribe(_ type: XDSType, _ names: [String]) -> DeltaResponse? {
            var request = DeltaDiscoveryRequest()
            request.typeURL = type.typeURL
            request.resourceNamesSubscribe = names
            let response = stream.handle(request, config: before).first
            var ack = DeltaDiscoveryRequest()
            ack.typeURL = type.typeURL
            ack.responseNonce = response?.nonce ?? ""
            #expect(stream.handle(ack, config: before).isEmpty)
            return response
        }
        // Wildcard CDS and EDS for exactly the class's clusters: every resource, as the class's block.
        let clusters = try #require(subscribe(.cluster, []))
        #expect(clusters.block === before.blocks[.cluster] && clusters.message.resources.isEmpty)
        #expect(clusters.resourceNames == before.sorted(.cluster).map(\.name))
        let endpoints = try #require(subscribe(.endpoint, before[.endpoint].keys.sorted()))
        #expect(endpoints.block === before.blocks[.endpoint] && endpoints.removedResources.isEmpty)
        #expect(endpoints.systemVersionInfo == before.fullVersion[.endpoint])
        // What the wire carries is what the resources would be as messages.
        let decoded = try DeltaDiscoveryResponse(serializedBytes: endpoints.serializedBytes())
        #expect(decoded == endpoints.materialized && decoded.resources.count == before[.endpoint].count)
        // The route configuration by name: the class has only this one, so it is the whole type too.
        let routes = try #require(subscribe(.route, ["http.8080"]))
        #expect(routes.block === before.blocks[.route] && routes.resourceNames == ["http.8080"])
        // Some of the clusters' endpoints: those resources, no block.
        var partial = DeltaStream()
        var request = DeltaDiscoveryRequest()
        request.typeURL = XDSType.endpoint.typeURL
        request.resourceNamesSubscribe = Array(before[.endpoint].keys.sorted().prefix(2)) + ["no-such-cluster"]
        let some = try #require(partial.handle(request, config: before).first)
        #expect(some.block == nil && some.resourceNames == Array(before[.endpoint].keys.sorted().prefix(2)))
        #expect(some.removedResources == ["no-such-cluster"])

        let next = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"), version: 2), previous: old)
        let pushed = stream.push(config: next.config(for: router))
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(pushed.first?.block == nil)
        #expect(pushed.first?.resourceNames == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
    }

    /// A delta router subscribed to CDS (wildcard) and EDS (every cluster), all ACKed, at `config`.
    func syncedDeltaStream(at config: EncodedConfig) -> DeltaStream {
        var stream = DeltaStream()
        for (type, names) in [(XDSType.cluster, [String]()), (.endpoint, config[.endpoint].keys.sorted())] {
            var request = DeltaDiscoveryRequest()
            request.typeURL = type.typeURL
            request.resourceNamesSubscribe = names
            let nonce = stream.handle(request, config: config).first?.nonce
            var ack = DeltaDiscoveryRequest()
            ack.typeURL = type.typeURL
            ack.responseNonce = nonce ?? ""
            #expect(nonce != nil && stream.handle(ack, config: config).isEmpty)
        }
        return stream
    }

    /// The router's config over `steps` generations after the first, each brought forward from the
    /// one before; generation i moves the v2 endpoint back and forth, so even steps have the first
    /// generation's content and odd ones differ from it in ``movedAssignments``.
    func endpointMoves(_ steps: Int) -> [EncodedConfig] {
        var generation = ConfigGeneration(snapshot: snapshot(mesh()))
        var configs = [generation.config(for: proxies[0])]
        for step in 1...steps {
            let address = step.isMultiple(of: 2) ? "10.0.0.2" : "10.0.0.9"
            generation = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: address), version: UInt64(step + 1)), previous: generation)
            configs.append(generation.config(for: proxies[0]))
        }
        return configs
    }

    let movedAssignments = ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"]

    @Test func aStreamThatMissedGenerationsIsSentWhatChangedSinceItsOwn() {
        let configs = endpointMoves(EncodedConfig.ancestryLimit + 1)
        let moved = movedAssignments
        for (step, config) in configs.enumerated().dropFirst() {
            // What changed since the first generation is known without comparing, up to the limit.
            let known = config.changedNames(.endpoint, since: configs[0])?.sorted()
            #expect(known == (step <= EncodedConfig.ancestryLimit ? moved : nil), "step \(step)")
            #expect(config.changedNames(.cluster, since: configs[0]) == (step <= EncodedConfig.ancestryLimit ? [] : nil))
            // A stream last pushed the first generation gets exactly what differs from it: nothing
            // on even steps (the same content again), the two moved assignments on odd ones.
            var stream = syncedDeltaStream(at: configs[0])
            let pushed = stream.push(config: config)
            #expect(pushed.map(\.typeURL) == (step.isMultiple(of: 2) ? [] : [XDSType.endpoint.typeURL]), "step \(step)")
            #expect(pushed.first.map { $0.resourceNames } ?? [] == (step.isMultiple(of: 2) ? [] : moved))
            #expect(pushed.first.map { $0.message.resources.map(\.version) } ?? [] == (step.isMultiple(of: 2) ? [] : moved.map { config[.endpoint][$0]!.version }))
            // And then it holds what a fresh stream of this generation holds.
            #expect(stream.state(.endpoint)?.known == syncedDeltaStream(at: config).state(.endpoint)?.known)
        }
    }

    /// A SotW stream last sent a config further back than the ancestry (it answered slower than the
    /// snapshots changed) gets exactly what differs from it.
    @Test func aSotWStreamFurtherBehindThanTheAncestryIsSentWhatDiffers() throws {
        let configs = endpointMoves(EncodedConfig.ancestryLimit + 3)
        let moved = movedAssignments
        for (step, config) in configs.enumerated().dropFirst(EncodedConfig.ancestryLimit + 1) {
            #expect(config.changedNames(.endpoint, since: configs[0]) == nil, "beyond the ancestry")
            var stream = SotWStream()
            for (type, names) in [(XDSType.cluster, [String]()), (.endpoint, configs[0][.endpoint].keys.sorted())] {
                let response = try #require(stream.handle(request(type, names: names), config: configs[0]).last)
                #expect(stream.handle(request(type, names: names, nonce: response.nonce, version: response.versionInfo), config: configs[0]).isEmpty)
            }
            let pushed = stream.push(config: config)
            #expect(pushed.map(\.typeURL) == (step.isMultiple(of: 2) ? [] : [XDSType.endpoint.typeURL]), "step \(step)")
            #expect(pushed.first.map(names)?.sorted() ?? [] == (step.isMultiple(of: 2) ? [] : moved.sorted()), "step \(step)")
        }
        // The walk itself: added, removed, replaced and kept resources, in name order.
        let a = EncodedResource(name: "a", any: Packing.any(Cluster()))
        let b = EncodedResource(name: "b", any: Packing.any(Cluster()))
        var other = Cluster()
        other.name = "b"
        let b2 = EncodedResource(name: "b", message: other)
        let bSame = EncodedResource(name: "b", any: Packing.any(Cluster()))
        let c = EncodedResource(name: "c", any: Packing.any(Cluster()))
        let d = EncodedResource(name: "d", any: Packing.any(Cluster()))
        #expect(EncodedConfig.changed([a, b2, d], since: [a, b, c]).map(\.name) == ["b", "d"])
        #expect(EncodedConfig.changed([b, c], since: [a, bSame, c, d]).isEmpty, "equal content in another object is unchanged")
        #expect(EncodedConfig.changed([a, b, c], since: []).map(\.name) == ["a", "b", "c"])
        #expect(EncodedConfig.changed([], since: [a]).isEmpty)
    }

    @Test func aSotWEndpointChangeAfterMoreRouteOnlyGenerationsThanTheAncestryHoldsIsDerived() throws {
        let router = proxies[0]
        var snapshots = [snapshot(mesh())]
        var generation = ConfigGeneration(snapshot: snapshots[0])
        var stream = SotWStream()
        let first = generation.config(for: router)
        for (type, names) in [(XDSType.cluster, [String]()), (.endpoint, first[.endpoint].keys.sorted())] {
            let response = try #require(stream.handle(request(type, names: names), config: first).last)
            #expect(stream.handle(request(type, names: names, nonce: response.nonce, version: response.versionInfo), config: first).isEmpty)
        }
        // More VirtualService edits than a config remembers ancestors: no EDS push, yet the stream
        // keeps deriving EDS changes from a config it holds the endpoints of.
        for step in 1...EncodedConfig.ancestryLimit + 2 {
            snapshots.append(snapshot(mesh(canaryHeader: "edit-\(step)"), after: snapshots.last!))
            generation = ConfigGeneration(snapshot: snapshots.last!, previous: generation)
            #expect(stream.push(config: generation.config(for: router)).isEmpty, "step \(step)")
        }
        snapshots.append(snapshot(mesh(reviewsV2Address: "10.0.0.9", canaryHeader: "edit-\(EncodedConfig.ancestryLimit + 2)"), after: snapshots.last!))
        generation = ConfigGeneration(snapshot: snapshots.last!, previous: generation)
        let moved = generation.config(for: router)
        let held = try #require(stream.state(.endpoint)?.sentFrom?.config)
        #expect(moved.changedNames(.endpoint, since: held)?.sorted() == ["outbound|9080|v2|reviews.shop.svc.cluster.local",
                                                                          "outbound|9080||reviews.shop.svc.cluster.local"])
        let pushed = stream.push(config: moved)
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(pushed.first.map(names) == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
    }

    @Test func anAckArrivingAfterANewGenerationLeavesTheChangeToThePushInTypeOrder() throws {
        let router = proxies[0]
        let old = ConfigGeneration(snapshot: snapshot(mesh()))
        var stream = syncedDeltaStream(at: old.config(for: router))
        // A new generation is published; before this stream's push, an ACK of an earlier response
        // arrives (the proxy re-sends its last ACK) and is handled against the new config.
        let next = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"), version: 2), previous: old).config(for: router)
        var ack = DeltaDiscoveryRequest()
        ack.typeURL = XDSType.endpoint.typeURL
        ack.responseNonce = try #require(stream.state(.endpoint)?.sentNonce)
        #expect(stream.handle(ack, config: next).isEmpty)
        #expect(stream.events == [.ack(.endpoint, nonce: ack.responseNonce)])
        // The push that follows the publication carries the change.
        let pushed = stream.push(config: next)
        #expect(pushed.map(\.typeURL) == [XDSType.endpoint.typeURL])
        #expect(pushed.first?.resourceNames == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
        // A subscription change is answered from the config it arrives with.
        var unsubscribe = DeltaDiscoveryRequest()
        unsubscribe.typeURL = XDSType.endpoint.typeURL
        unsubscribe.responseNonce = try #require(pushed.first?.nonce)
        unsubscribe.resourceNamesUnsubscribe = ["outbound|9080|v1|reviews.shop.svc.cluster.local"]
        let later = ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.7"), version: 3),
                                     previous: ConfigGeneration(snapshot: snapshot(mesh(reviewsV2Address: "10.0.0.9"), version: 2), previous: old))
        let answer = stream.handle(unsubscribe, config: later.config(for: router))
        #expect(answer.first?.resourceNames == ["outbound|9080|v2|reviews.shop.svc.cluster.local", "outbound|9080||reviews.shop.svc.cluster.local"])
    }

    /// ServiceEntries (name, hosts, first endpoint address, creation time), then WorkloadEntries.
    func entries(_ list: [(String, [String], String, String)], selecting port: Int? = nil, workloads: [String] = []) -> String {
        var yaml = list.map { name, hosts, address, created in
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: \(name), namespace: shop, creationTimestamp: "\(created)"}
            spec:
              hosts: [\(hosts.joined(separator: ", "))]
              resolution: STATIC
              ports: [{number: 80, name: http, protocol: HTTP}]
              endpoints: [{address: \(address)}]
            """
        }
        if let port {
            yaml.append("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: selected, namespace: shop}
            spec:
              hosts: [selected.example.com]
              resolution: STATIC
              ports: [{number: \(port), name: http, protocol: HTTP}]
              workloadSelector: {labels: {app: selected}}
            """)
        }
        for (index, address) in workloads.enumerated() {
            yaml.append("""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: w\(index), namespace: shop}
            spec: {address: \(address), labels: {app: selected}}
            """)
        }
        return yaml.joined(separator: "\n---\n")
    }

    @Test func servicesUpdatedFromTheModelBeforeEqualAFreshBuild() {
        let old = "2024-01-01T00:00:00Z", older = "2023-01-01T00:00:00Z"
        let a = ("a", ["a.example.com"], "10.0.1.1", old), b = ("b", ["b.example.com", "c.example.com"], "10.0.2.1", old)
        // (step, whether the services can be updated rather than rebuilt)
        let steps: [(String, Bool)] = [
            (entries([a, b]), false),
            (entries([("a", ["a.example.com"], "10.0.1.9", old), b]), true),                       // an endpoint moved
            (entries([("a", ["a.example.com", "d.example.com"], "10.0.1.9", old), b]), true),      // a host added
            (entries([("a", ["a.example.com", "d.example.com"], "10.0.1.9", old), b, ("e", ["e.example.com"], "10.0.5.1", old)]), true),
            (entries([("a", ["a.example.com", "d.example.com"], "10.0.1.9", old), ("e", ["e.example.com"], "10.0.5.1", old)]), true), // b removed
            // An older entry declaring a.example.com too: Istio's order decides, a full build.
            (entries([("a", ["a.example.com", "d.example.com"], "10.0.1.9", old), ("e", ["e.example.com"], "10.0.5.1", old),
                      ("f", ["a.example.com"], "10.0.6.1", older)]), false),
            (entries([("a", ["a.example.com", "d.example.com"], "10.0.1.9", old), ("e", ["e.example.com"], "10.0.5.1", old)]), false),
            (entries([a], selecting: 80, workloads: ["10.0.9.1"]), false),                         // WorkloadEntries changed
            (entries([a], selecting: 8080, workloads: ["10.0.9.1"]), true),                        // the selecting entry's port
            (entries([a], selecting: 8080, workloads: ["10.0.9.1", "10.0.9.2"]), false),
        ]
        var previous = MeshModel(snapshot: snapshot(steps[0].0))
        var previousSnapshot = snapshot(steps[0].0)
        for (index, (yaml, incremental)) in steps.enumerated().dropFirst() {
            let next = snapshot(yaml, after: previousSnapshot)
            let updated = MeshModel(snapshot: next, previous: previous)
            let fresh = MeshModel(snapshot: next)
            #expect((updated.servicesUpdate != nil) == incremental, "step \(index)")
            #expect(updated.services == fresh.services, "step \(index)")
            #expect(updated.hostDeclarations == fresh.hostDeclarations, "step \(index)")
            #expect(MeshChange(from: previous, to: updated) == MeshChange(from: previous, to: fresh), "step \(index)")
            (previous, previousSnapshot) = (updated, next)
        }
        // The older duplicate's service is the one served.
        let duplicate = MeshModel(snapshot: snapshot(steps[5].0))
        #expect(duplicate.services["a.example.com"]?.source.name == "f")
    }

    @Test func virtualServicesKeepIstiosOrderWhenTheModelBeforeGivesIt() {
        /// VirtualServices (name, created, header) on the gateway.
        func services(_ list: [(String, String, String)]) -> String {
            list.map { name, created, header in
                """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: \(name), namespace: shop, creationTimestamp: "\(created)"}
                spec:
                  hosts: [\(name).example.com]
                  gateways: [istio-system/gw]
                  http:
                  - match: [{headers: {x-a: {exact: \(header)}}}]
                    route: [{destination: {host: reviews.shop.svc.cluster.local}}]
                """
            }.joined(separator: "\n---\n")
        }
        let (t0, t1, t2, t3) = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")
        let steps = [
            services([("a", t1, "x"), ("b", t0, "x"), ("c", t2, "x")]),
            services([("a", t1, "y"), ("b", t0, "x"), ("c", t2, "x")]),      // a edited: the order before holds
            services([("a", t3, "w"), ("b", t0, "x"), ("c", t2, "x")]),      // a recreated: sorted again
            services([("a", t3, "w"), ("b", t0, "x"), ("c", t2, "x"), ("d", t0, "x")]),
            services([("b", t0, "x"), ("c", t2, "z"), ("d", t0, "x")]),
        ]
        var previousSnapshot = snapshot(steps[0])
        var previous = MeshModel(snapshot: previousSnapshot)
        #expect(previous.virtualServices.map(\.key.name) == ["b", "a", "c"])
        for (index, yaml) in steps.enumerated().dropFirst() {
            let next = snapshot(yaml, after: previousSnapshot)
            let updated = MeshModel(snapshot: next, previous: previous), fresh = MeshModel(snapshot: next)
            #expect(updated.virtualServices.map(\.key) == fresh.virtualServices.map(\.key), "step \(index)")
            #expect(zip(updated.virtualServices, fresh.virtualServices).allSatisfy { $0.hasSameContent(as: $1) }, "step \(index)")
            (previous, previousSnapshot) = (updated, next)
        }
        #expect(previous.virtualServices.map(\.key.name) == ["b", "d", "c"])
    }
}
