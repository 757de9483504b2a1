import EnvoyAPI
import Foundation
import IstioAPI
@testable import MCP
import Snapshot
import SwiftProtobuf
import Synchronization
import Testing

/// A valid ServiceEntry named `ns/<name>` for host `<name>.example.com`.
func service(_ name: String, port: UInt32 = 80) -> ConfigResource {
    var spec = ServiceEntry()
    spec.hosts = ["\(name).example.com"]
    var servicePort = Istio_Networking_V1alpha3_ServicePort()
    servicePort.number = port
    servicePort.name = "http"
    spec.ports = [servicePort]
    return ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: "ns", name: name), spec: .serviceEntry(spec))
}

/// An MCP source served on a loopback port, restartable on the same port.
final class RunningSource: Sendable {
    let source = MCPSource()
    private let task = Mutex<Task<Void, any Error>?>(nil)
    private let bound = Mutex<Int>(0)

    func start(port: Int = 0) async throws -> Int {
        let (ports, ready) = AsyncStream<Int>.makeStream()
        let source = self.source
        task.withLock { $0 = Task { try await source.serve(host: "127.0.0.1", port: port) { ready.yield($0) } } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        bound.withLock { $0 = port }
        return port
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = try? await running?.value
    }

    var port: Int { bound.withLock { $0 } }
}

/// Polls until `condition` holds (at most 10 s).
func eventually(_ what: String, _ condition: () -> Bool) async throws {
    for _ in 0..<200 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out waiting for \(what)")
}

func names(_ store: SnapshotStore) -> [String] { store.current.resources(.serviceEntry).map(\.key.name) }

@Suite(.serialized) struct MCPFlavourTests {
    @Test(arguments: ["xds", "mcp"])
    func syncUpdateDeleteAndReconnect(flavour: String) async throws {
        let running = RunningSource()
        running.source.replace([service("a"), service("b")])
        let port = try await running.start()
        let store = SnapshotStore()
        let id = "\(flavour)://127.0.0.1:\(port)"
        let aggregator = ConfigAggregator(store: store, sources: [id])
        var connection = SourceConnection(host: "127.0.0.1", port: port)
        connection.kinds = [.serviceEntry, .gateway]
        let sink = Task {
            if flavour == "xds" {
                await XDSConfigSink(id: id, connection: connection, aggregator: aggregator).run()
            } else {
                await LegacyMCPSink(session: LegacySinkSession(id: id, kinds: connection.kinds, aggregator: aggregator), connection: connection).run()
            }
        }
        defer { sink.cancel() }

        try await eventually("initial sync") { names(store) == ["a", "b"] }
        // Each kind is its own response: the empty Gateway collection may land after the services.
        try await eventually("an empty collection counts as synced") { aggregator.syncedKinds(source: id) == [.serviceEntry, .gateway] }

        running.source.replace(kind: .serviceEntry, with: [service("a", port: 8080), service("b")])
        try await eventually("update") {
            guard case .serviceEntry(let spec)? = store.current.resource(ConfigKey(kind: .serviceEntry, namespace: "ns", name: "a"))?.spec else { return false }
            return spec.ports.first?.number == 8080
        }

        running.source.replace(kind: .serviceEntry, with: [service("a", port: 8080)])
        try await eventually("delete") { names(store) == ["a"] }

        // The source goes away; a resource is deleted and one added while nobody is connected.
        await running.stop()
        running.source.replace(kind: .serviceEntry, with: [service("c")])
        _ = try await running.start(port: port)
        try await eventually("reconvergence after the source restarts") { names(store) == ["c"] }
        await running.stop()
    }

    @Test func legacyIncrementalSessionResumptionRemovesWhatWentAwayWhileDisconnected() async throws {
        let running = RunningSource()
        running.source.replace([service("a"), service("b"), service("c")])
        let port = try await running.start()
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["legacy"])
        let session = LegacySinkSession(id: "legacy", kinds: [.serviceEntry], resume: true, aggregator: aggregator)
        let connection = SourceConnection(host: "127.0.0.1", port: port)
        var sink = Task { await LegacyMCPSink(session: session, connection: connection).run() }
        try await eventually("initial sync") { names(store) == ["a", "b", "c"] }
        sink.cancel()
        _ = await sink.value

        // Reconnecting, the sink says what it holds; the source answers with the difference only.
        let resume = try #require(session.initialRequests().first)
        #expect(resume.incremental)
        #expect(Set(resume.initialResourceVersions.keys) == ["ns/a", "ns/b", "ns/c"])

        running.source.replace(kind: .serviceEntry, with: [service("a"), service("d")])
        sink = Task { await LegacyMCPSink(session: session, connection: connection).run() }
        defer { sink.cancel() }
        try await eventually("resumed sync") { names(store) == ["a", "d"] }
        await running.stop()
    }

    @Test func legacyOpeningRequestsAskForFullStateUnlessResuming() throws {
        let aggregator = ConfigAggregator(store: SnapshotStore(), sources: ["legacy"])
        let session = LegacySinkSession(id: "legacy", kinds: [.serviceEntry], aggregator: aggregator)
        var full = Resources()
        full.collection = ConfigKind.serviceEntry.legacyCollection
        full.nonce = "1"
        full.resources = [MCPEnvelope.envelope(service("a"))]
        #expect(session.handle(full).incremental, "ACKs ask for incremental delivery")
        let reopening = try #require(session.initialRequests().first)
        #expect(!reopening.incremental && reopening.initialResourceVersions.isEmpty,
                "a new stream starts with full state: sources that ignore initial versions would never send removals")
    }

    @Test func legacyUndecodableBodyIsNACKedAndTheCollectionKept() throws {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["legacy"])
        let session = LegacySinkSession(id: "legacy", kinds: [.serviceEntry], aggregator: aggregator)
        var good = Resources()
        good.collection = ConfigKind.serviceEntry.legacyCollection
        good.nonce = "1"
        good.resources = [MCPEnvelope.envelope(service("a"))]
        let ack = session.handle(good)
        #expect(!ack.hasErrorDetail && ack.responseNonce == "1" && ack.incremental)

        var bad = good
        bad.nonce = "2"
        bad.resources[0].body.value = Data([0xff, 0xff, 0xff])
        let nack = session.handle(bad)
        #expect(nack.hasErrorDetail && nack.responseNonce == "2")
        #expect(nack.errorDetail.message.contains("ns/a"))
        #expect(names(store) == ["a"], "the last good collection keeps serving")

        var unknown = Resources()
        unknown.collection = "istio/networking/v1alpha3/unknowns"
        unknown.nonce = "3"
        #expect(session.handle(unknown).errorDetail.code == 12, "UNIMPLEMENTED for an unknown collection")
    }

    @Test func xdsUndecodableEnvelopeIsNACKedWithTheLastGoodVersion() throws {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["x"])
        let sink = XDSConfigSink(id: "x", connection: SourceConnection(host: "127.0.0.1", port: 1), aggregator: aggregator)
        var good = Envoy_Service_Discovery_V3_DiscoveryResponse()
        good.typeURL = ConfigKind.serviceEntry.mcpTypeURL
        good.versionInfo = "v1"
        good.nonce = "n1"
        good.resources = [MCPEnvelope.pack(service("a"))]
        let ack = try #require(sink.handle(good))
        #expect(!ack.hasErrorDetail && ack.versionInfo == "v1" && ack.responseNonce == "n1")

        var bad = good
        bad.versionInfo = "v2"
        bad.nonce = "n2"
        bad.resources[0].typeURL = "type.googleapis.com/something.Else"
        let nack = try #require(sink.handle(bad))
        #expect(nack.hasErrorDetail && nack.versionInfo == "v1" && nack.responseNonce == "n2")
        #expect(names(store) == ["a"])
        #expect(aggregator.rejections.count == 1)

        var meshConfig = good
        meshConfig.typeURL = MCPEnvelope.meshConfigTypeURL
        #expect(sink.handle(meshConfig) == nil, "MeshConfig is not ACKed, as istiod does")
    }

    @Test func reDecodingReusesUnchangedEnvelopesAndDecodesChangedOnes() throws {
        var cache: [Data: ConfigResource] = [:]
        let first = [service("a"), service("b"), service("c")].map(MCPEnvelope.pack)
        let decodedFirst = try MCPEnvelope.decode(first, kind: .serviceEntry, location: "t", origin: "x", reusing: &cache)
        #expect(decodedFirst.resources.map(\.key.name) == ["a", "b", "c"] && cache.count == 3)
        // b changes, c goes away, d arrives; a comes from the cache.
        var broken = MCPEnvelope.pack(service("e"))
        broken.value = Data([0xff, 0xff])
        let second = [first[0], MCPEnvelope.pack(service("b", port: 81)), MCPEnvelope.pack(service("d")), broken]
        #expect(throws: MCPEnvelope.EnvelopeError.self) {
            try MCPEnvelope.decode(second, kind: .serviceEntry, location: "t", origin: "x", reusing: &cache)
        }
        #expect(cache.count == 3, "a failed decode leaves the cache as it was")
        let decodedSecond = try MCPEnvelope.decode(Array(second.prefix(3)), kind: .serviceEntry, location: "t", origin: "x", reusing: &cache)
        let fresh = try MCPEnvelope.decode(Array(second.prefix(3)), kind: .serviceEntry, location: "t", origin: "x")
        #expect(decodedSecond.resources == fresh.resources)
        let ports = decodedSecond.resources.map { resource -> UInt32? in
            guard case .serviceEntry(let entry) = resource.spec else { return nil }
            return entry.ports.first?.number
        }
        #expect(ports == [80, 81, 80])
        #expect(Set(cache.values.map(\.key.name)) == ["a", "b", "d"], "the cache holds this response's resources only")
    }

    @Test func sourceEncodesEachResourceOnceAndReusesUnchangedOnes() {
        let source = MCPSource()
        source.replace(kind: .serviceEntry, with: [service("c"), service("a"), service("b")])
        let first = source.collection(.serviceEntry)
        #expect(first.version == 1 && first.resources.map(\.key.name) == ["a", "b", "c"])
        #expect(first.envelopes == first.resources.map(MCPEnvelope.pack))
        #expect(first.bodies == first.resources.map { $0.spec.packedAny() })

        // The same content again is no new version.
        source.replace(kind: .serviceEntry, with: [service("a"), service("b"), service("c")])
        #expect(source.collection(.serviceEntry).version == 1)

        // b changes, c goes away, d arrives: the result is what encoding everything afresh gives.
        source.replace(kind: .serviceEntry, with: [service("d"), service("b", port: 81), service("a")])
        let second = source.collection(.serviceEntry)
        #expect(second.version == 2 && second.resources.map(\.key.name) == ["a", "b", "d"])
        #expect(second.envelopes == second.resources.map(MCPEnvelope.pack))
        #expect(second.bodies == second.resources.map { $0.spec.packedAny() })
        #expect(second.envelopes[1] != first.envelopes[1], "b's new port is in its envelope")

        // The legacy protocol's envelopes carry the packed bodies with content-hash versions.
        let legacy = zip(second.resources, second.bodies).map(LegacyMCPSourceService.envelope)
        #expect(legacy.map(\.body) == second.resources.map { MCPEnvelope.envelope($0).body })
        #expect(legacy.map(\.metadata.version) == second.resources.map(LegacyMCPSourceService.version))
    }

    @Test func resourcesDeliveredAgainUnchangedAreNotValidatedAgainButInvalidOnesStayRejected() {
        let store = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["x"])
        var invalid = ServiceEntry()
        invalid.hosts = []
        let bad = ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: "ns", name: "bad"), spec: .serviceEntry(invalid))
        var counts: [Int] = []
        for _ in 0..<2 {
            aggregator.replace(source: "x", kind: .serviceEntry, with: [service("a"), bad])
            #expect(names(store) == ["a"])
            #expect(Set(aggregator.rejections.map(\.error.resource)) == ["ServiceEntry ns/bad"])
            counts.append(aggregator.rejections.count)
        }
        #expect(counts[0] > 0 && counts[0] == counts[1], "the same problems, reported once each time")
        aggregator.replace(source: "x", kind: .serviceEntry, with: [service("a", port: 0)])
        #expect(names(store).isEmpty, "a changed resource is validated again (port 0 is invalid)")
    }

    @Test func aSinkAppliesWhatEachResponseChangedAndEndsWhereReplacingTheWholeSetWould() throws {
        // The sink under test, and a reference aggregator given each response's whole set.
        let store = SnapshotStore(), reference = SnapshotStore()
        let aggregator = ConfigAggregator(store: store, sources: ["x", "y"])
        let replacing = ConfigAggregator(store: reference, sources: ["x", "y"])
        let sink = XDSConfigSink(id: "x", connection: SourceConnection(host: "127.0.0.1", port: 1), aggregator: aggregator)
        let invalid = service("bad", port: 0)
        var wrongBody = MCPEnvelope.pack(service("e"))
        var envelope = try Istio_Mcp_V1alpha1_Resource(serializedBytes: wrongBody.value)
        envelope.body.typeURL = "type.googleapis.com/istio.networking.v1alpha3.Gateway"
        wrongBody.value = try envelope.serializedBytes()
        let other = ConfigResource(key: ConfigKey(kind: .serviceEntry, namespace: "ns", name: "y1"), spec: service("y1").spec, origin: "y")
        // (envelopes, what source y delivers before the response, names the store's diff reports changed)
        let steps: [([Google_Protobuf_Any], [ConfigResource]?, Set<String>)] = [
            ([service("a"), service("b"), service("c"), invalid].map(MCPEnvelope.pack), nil, ["ns/a", "ns/b", "ns/c"]),
            ([service("a"), service("b", port: 81), service("d"), invalid].map(MCPEnvelope.pack), nil, ["ns/b", "ns/c", "ns/d"]),
            ([service("a"), service("b", port: 81), service("d"), service("bad")].map(MCPEnvelope.pack), nil, ["ns/bad"]),
            ([MCPEnvelope.pack(service("a")), MCPEnvelope.pack(service("d")), wrongBody], nil, ["ns/b", "ns/bad"]),
            // Another source delivers the kind too (a conflict on `a`): the merge, then patches again.
            ([service("a"), service("d", port: 82)].map(MCPEnvelope.pack), [service("a", port: 90), other], ["ns/d", "ns/y1"]),
            ([service("a"), service("d", port: 83)].map(MCPEnvelope.pack), [], ["ns/d", "ns/y1"]),
            ([service("a"), service("d", port: 84)].map(MCPEnvelope.pack), nil, ["ns/d"]),
            // One name twice: the last envelope wins, as in a replace, here the one already held...
            ([service("a"), service("d", port: 85), service("d", port: 84)].map(MCPEnvelope.pack), nil, []),
            // ...so the other one, alone, is a change.
            ([service("a"), service("d", port: 85)].map(MCPEnvelope.pack), nil, ["ns/d"]),
            ([service("a"), service("d", port: 85), service("a", port: 86)].map(MCPEnvelope.pack), nil, ["ns/a"]),
            ([], nil, ["ns/a", "ns/d"]),
        ]
        for (index, (envelopes, fromY, expectedChanges)) in steps.enumerated() {
            let before = store.current.version
            if let fromY {
                aggregator.replace(source: "y", kind: .serviceEntry, with: fromY)
                replacing.replace(source: "y", kind: .serviceEntry, with: fromY)
            }
            var response = Envoy_Service_Discovery_V3_DiscoveryResponse()
            response.typeURL = ConfigKind.serviceEntry.mcpTypeURL
            response.versionInfo = "v\(index)"
            response.nonce = "n\(index)"
            response.resources = envelopes
            let ack = try #require(sink.handle(response))
            #expect(!ack.hasErrorDetail, "step \(index)")
            let whole = try MCPEnvelope.decode(envelopes, kind: .serviceEntry, location: "t", origin: "x")
            replacing.replace(source: "x", kind: .serviceEntry, with: whole.resources)
            #expect(store.current[.serviceEntry].resources == reference.current[.serviceEntry].resources, "step \(index)")
            let rejected = { (aggregator: ConfigAggregator) in Set(aggregator.rejections.map { "\($0.error.resource ?? "") \($0.error.field ?? "")" }) }
            let decodeRejections = Set(whole.errors.map { "\($0.resource ?? "") \($0.field ?? "")" })
            #expect(rejected(aggregator) == rejected(replacing).union(decodeRejections), "step \(index)")
            #expect(rejected(aggregator).contains("ServiceEntry ns/d metadata.name") == (index == 7), "step \(index)")
            let changes = store.history.filter { $0.version > before }.flatMap { $0.diff.changes[.serviceEntry]?.all ?? [] }
            #expect(Set(changes) == expectedChanges, "step \(index)")
        }
    }

    @Test func sourceURLOptionsAreParsedAndBadOnesNamed() throws {
        let connection = try SourceConnection(url: "xds://h:1?versions=v1,v1alpha3&kinds=ServiceEntry,Gateway&required=ServiceEntry&ca=/ca.pem&sni=mcp.example",
                                              authority: "h:1", query: "versions=v1,v1alpha3&kinds=ServiceEntry,Gateway&required=ServiceEntry&ca=/ca.pem&sni=mcp.example")
        #expect(connection.versions == ["v1", "v1alpha3"])
        #expect(connection.kinds == [.serviceEntry, .gateway])
        #expect(connection.requiredKinds == [.serviceEntry])
        #expect(connection.tls?.caFile == "/ca.pem" && connection.tls?.serverName == "mcp.example")
        #expect(throws: SourceConnection.ParseError.self) { try SourceConnection(url: "u", authority: "h:1", query: "kinds=Bogus") }
        #expect(throws: SourceConnection.ParseError.self) { try SourceConnection(url: "u", authority: "h:1", query: "cert=/c.pem") }
        #expect(throws: SourceConnection.ParseError.self) { try SourceConnection(url: "u", authority: "h", query: nil) }
    }
}
