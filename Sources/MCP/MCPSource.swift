import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IstioAPI
import Logging
import Snapshot
import SwiftProtobuf
import Synchronization

/// A reusable MCP **source**: serves Istio config collections to MCP sinks over MCP-over-xDS
/// (`envoy.service.discovery.v3.AggregatedDiscoveryService`, state of the world per type) and the
/// legacy `istio.mcp.v1alpha1.ResourceSource` (per collection, incremental).
///
/// Registry vendors push their catalogue with ``replace(_:)`` or ``replace(kind:with:)``; every
/// connected sink then receives the new collection. Each type gets a response even when empty,
/// and unknown types get an empty list, so sinks that wait for every type become ready.
public final class MCPSource: Sendable {
    /// One kind's resources, sorted by key, each encoded once per content: a registry that changes
    /// one resource re-publishes its whole collection, and every sink and every later response reuse
    /// the bytes of the resources that did not change.
    struct Collection: Sendable {
        var version: UInt64 = 0
        var resources: [ConfigResource] = []
        /// Per resource, in the same order: its body packed in an `Any`.
        var bodies: [Google_Protobuf_Any] = []
        /// Per resource, in the same order: its MCP-over-xDS envelope packed in an `Any`.
        var envelopes: [Google_Protobuf_Any] = []

        init() {}

        /// `sorted` encoded, reusing `previous`'s encodings of the resources it holds unchanged.
        init(sorted: [ConfigResource], reusing previous: Collection) {
            resources = sorted
            bodies.reserveCapacity(sorted.count)
            envelopes.reserveCapacity(sorted.count)
            var index = 0  // both lists are sorted by key: one merge walk
            for resource in sorted {
                while index < previous.resources.count, previous.resources[index].key < resource.key { index += 1 }
                if index < previous.resources.count, Self.encodeAlike(previous.resources[index], resource) {
                    bodies.append(previous.bodies[index])
                    envelopes.append(previous.envelopes[index])
                } else {
                    let body = resource.spec.packedAny()
                    bodies.append(body)
                    envelopes.append(MCPEnvelope.pack(MCPEnvelope.envelope(resource, body: body)))
                }
            }
        }

        /// Whether two resources have the same envelope.
        static func encodeAlike(_ a: ConfigResource, _ b: ConfigResource) -> Bool {
            a.key == b.key && a.version == b.version && a.createTime == b.createTime && a.hasSameContent(as: b)
        }
    }

    private struct State: Sendable {
        var collections: [ConfigKind: Collection] = [:]
    }

    private let state = Mutex(State())
    /// The sink streams woken by each change.
    let wakeups = Wakeups()
    let logger: Logger

    public init(logger: Logger = Logger(label: "swiftpilot.mcp-source")) {
        self.logger = logger
    }

    /// Replaces every collection with `resources` (kinds absent from it become empty).
    public func replace(_ resources: [ConfigResource]) {
        var byKind = Dictionary(uniqueKeysWithValues: ConfigKind.allCases.map { ($0, [ConfigResource]()) })
        for resource in resources { byKind[resource.key.kind, default: []].append(resource) }
        update(byKind)
    }

    /// Replaces one collection.
    public func replace(kind: ConfigKind, with resources: [ConfigResource]) {
        update([kind: resources])
    }

    private func update(_ changes: [ConfigKind: [ConfigResource]]) {
        // Encoding happens outside the lock; concurrent replacements of one kind: the last one wins.
        let current = state.withLock { $0.collections }
        var built: [ConfigKind: Collection] = [:]
        for (kind, resources) in changes {
            let previous = current[kind] ?? Collection()
            let sorted = resources.sorted { $0.key < $1.key }
            let same = sorted.count == previous.resources.count && zip(sorted, previous.resources).allSatisfy(Collection.encodeAlike)
            if same, previous.version > 0 { continue }
            built[kind] = Collection(sorted: sorted, reusing: previous)
        }
        guard !built.isEmpty else { return }
        state.withLock { state in
            for (kind, var collection) in built {
                collection.version = (state.collections[kind]?.version ?? 0) + 1
                state.collections[kind] = collection
            }
        }
        wakeups.wakeAll()
    }

    /// Loads a directory once and serves its content (every kind, empty ones included).
    public func load(_ directory: ConfigDirectory) {
        let contents = directory.load()
        for error in contents.errors { logger.warning("rejected config", metadata: ["error": "\(error)"]) }
        replace(contents.resources)
    }

    /// The current collection of a kind and its version.
    func collection(_ kind: ConfigKind) -> Collection { state.withLock { $0.collections[kind] ?? Collection() } }

    /// The gRPC services to register on a server: MCP-over-xDS and the legacy `ResourceSource`.
    public var services: [any RegistrableRPCService] { [MCPOverXDSService(source: self), LegacyMCPSourceService(source: self)] }

    /// Listens on `host:port` (0 = any free port) and serves until cancelled; `onListening` gets the bound port.
    public func serve(host: String, port: Int, onListening: @Sendable (Int) -> Void = { _ in }) async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: host, port: port), transportSecurity: .plaintext,
            config: .defaults { $0.rpc.maxRequestPayloadSize = 64 << 20 })
        let server = GRPCServer(transport: transport, services: services)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            let bound = try await transport.listeningAddress.ipv4?.port ?? port
            logger.info("MCP source listening", metadata: ["address": "\(host):\(bound)"])
            onListening(bound)
            group.addTask {
                await waitUntilCancelled()
                server.beginGracefulShutdown()
            }
        }
    }

    /// Serves a watched directory of Istio YAML. Call ``load(_:)`` first to serve its content from the start.
    public func follow(_ directory: ConfigDirectory) async {
        for await contents in directory.watch() {
            for error in contents.errors { logger.warning("rejected config", metadata: ["error": "\(error)"]) }
            logger.info("loaded config directory", metadata: ["dir": "\(directory.path)", "resources": "\(contents.resources.count)", "rejected": "\(contents.errors.count)"])
            replace(contents.resources)
        }
    }
}

/// The MCP-over-xDS stream handler of ``MCPSource``.
struct MCPOverXDSService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let source: MCPSource

    func streamAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
        context: ServerContext
    ) async throws {
        let session = MCPOverXDSSession(source: source, writer: response)
        try await serveStream(request, wakeups: source.wakeups,
                              onRequest: { try await session.handle($0) },
                              onWake: { try await session.push() })
    }

    func deltaAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "MCP-over-xDS is served as state of the world")
    }
}

/// One sink's MCP-over-xDS stream: what each subscribed type was last sent. Used by one request or
/// one push at a time (``serveStream(_:wakeups:onRequest:onWake:)`` guarantees it).
private final class MCPOverXDSSession: @unchecked Sendable {
    struct Subscription {
        var sentVersion: UInt64?
        var sentNonce: String?
    }

    let source: MCPSource
    let writer: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>
    var subscriptions: [String: Subscription] = [:]
    var nonce: UInt64 = 0

    init(source: MCPSource, writer: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>) {
        self.source = source
        self.writer = writer
    }

    /// A request: a first one (or one after a reconnect of the type) is answered at once; an ACK or
    /// NACK of the last response is noted; a stale nonce is ignored.
    func handle(_ request: Envoy_Service_Discovery_V3_DiscoveryRequest) async throws {
        var subscription = subscriptions[request.typeURL] ?? Subscription()
        let fresh = request.responseNonce.isEmpty || subscription.sentNonce == nil
        if !fresh, request.responseNonce != subscription.sentNonce { return }
        if request.hasErrorDetail, !fresh {
            source.logger.warning("sink rejected a collection", metadata: ["type": "\(request.typeURL)", "error": "\(request.errorDetail.message)"])
        }
        if fresh { try await respond(request.typeURL, &subscription, force: true) }
        subscriptions[request.typeURL] = subscription
    }

    /// A publish: every subscribed type whose collection changed, in type order.
    func push() async throws {
        for typeURL in subscriptions.keys.sorted() {
            var subscription = subscriptions[typeURL]!
            try await respond(typeURL, &subscription, force: false)
            subscriptions[typeURL] = subscription
        }
    }

    private func respond(_ typeURL: String, _ subscription: inout Subscription, force: Bool) async throws {
        var message = Envoy_Service_Discovery_V3_DiscoveryResponse()
        message.typeURL = typeURL
        let version: UInt64
        if typeURL == MCPEnvelope.meshConfigTypeURL {
            version = 1
            guard force || subscription.sentVersion != version else { return }
            var any = Google_Protobuf_Any()
            any.typeURL = "type.googleapis.com/istio.mesh.v1alpha1.MeshConfig"
            any.value = try Istio_Mesh_V1alpha1_MeshConfig().serializedBytes()
            message.resources = [any]
        } else if let kind = ConfigKind(mcpTypeURL: typeURL) {
            let collection = source.collection(kind)
            version = collection.version
            guard force || subscription.sentVersion != version else { return }
            message.resources = collection.envelopes
        } else {
            version = 0
            guard force || subscription.sentVersion != version else { return }
        }
        nonce += 1
        message.versionInfo = String(version)
        message.nonce = String(nonce)
        subscription.sentVersion = version
        subscription.sentNonce = message.nonce
        try await writer.write(message)
    }
}
