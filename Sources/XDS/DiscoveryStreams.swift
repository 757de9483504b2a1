import EnvoyAPI
import Foundation
import GRPCCore
import Logging
import Mesh
import Snapshot
import Synchronization

/// Runs discovery streams (state of the world and delta) for every service SwiftPilot serves:
/// ADS and the per-type Cluster/Endpoint/Listener/Route discovery services.
///
/// Each stream is one loop over two inputs, the proxy's requests and wake-ups for new
/// generations; the protocol itself lives in the pure ``SotWStream`` and ``DeltaStream``.
public struct DiscoveryStreams: Sendable {
    let broadcaster: GenerationBroadcaster
    let status: SyncStatusRegistry
    let metrics: XDSMetrics
    let logger: Logger
    private let connectionCounter = AtomicCounter()
    /// Requests handled and responses written: the heap trimmer runs after activity.
    let activity = AtomicCounter()

    public init(broadcaster: GenerationBroadcaster, status: SyncStatusRegistry, metrics: XDSMetrics = XDSMetrics(),
                logger: Logger = Logger(label: "swiftpilot.xds")) {
        self.broadcaster = broadcaster
        self.status = status
        self.metrics = metrics
        self.logger = logger
    }

    /// One connected stream. Every connected proxy keeps one, so it holds nothing twice: the proxy
    /// lives in its sync status entry, and log lines name the connection as they are written.
    struct Connection: Sendable {
        var id: String
        /// The proxy's class, computed once (generations cache config per class).
        var proxyClass: ProxyClass
        /// The connection's sync status, updated in place.
        var status: SyncStatusRegistry.Entry
        /// Whether a delta ADS stream of this proxy serves routes over VHDS (`SWIFTPILOT_VHDS`).
        var virtualHostDiscovery: Bool
        /// ADS (every type on one stream) rather than a per-type service.
        var aggregated: Bool

        var proxy: Proxy { status.proxy }
    }

    /// Logs a line about `connection`, naming it; the metadata is built only if `level` is enabled.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, connection: Connection,
             metadata: @autoclosure () -> Logger.Metadata = [:]) {
        logger.log(level: level, message(), metadata: metadata().merging(["proxy": "\(connection.id)"]) { own, _ in own })
    }

    /// The proxy named by the first request of a stream, or a gRPC `INVALID_ARGUMENT` saying what is wrong.
    static func proxy(from node: Envoy_Config_Core_V3_Node?) throws -> Proxy {
        guard let node, !node.id.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "the first discovery request of a stream must carry node.id")
        }
        do {
            return try Proxy(node: node)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
    }

    /// The proxy's `SWIFTPILOT_VHDS` node metadata (default on), or a gRPC `INVALID_ARGUMENT` saying what is wrong.
    static func virtualHostDiscovery(of node: Envoy_Config_Core_V3_Node?) throws -> Bool {
        guard let node else { return true }
        do {
            return try node.virtualHostDiscovery
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
    }

    // MARK: - State of the world and delta

    /// A state-of-the-world stream; `fixedType` for the per-type services (their requests may omit the type URL).
    public func stateOfTheWorld(_ requests: RPCAsyncSequence<SotWRequest, any Error>, writer: RPCWriter<SotWResponse>,
                                fixedType: XDSType? = nil) async throws {
        try await serve(SotWStream.self, transport: "sotw", requests: requests, writer: writer, fixedType: fixedType)
    }

    /// A state-of-the-world stream whose requests arrive decoded (the per-type services).
    public func stateOfTheWorld(_ requests: RPCAsyncSequence<DiscoveryRequest, any Error>, writer: RPCWriter<SotWResponse>,
                                fixedType: XDSType? = nil) async throws {
        try await stateOfTheWorld(RPCAsyncSequence(wrapping: requests.map { SotWRequest($0) }), writer: writer, fixedType: fixedType)
    }

    /// A delta (incremental) stream.
    public func delta(_ requests: RPCAsyncSequence<DeltaDiscoveryRequest, any Error>, writer: RPCWriter<DeltaResponse>,
                      fixedType: XDSType? = nil) async throws {
        try await serve(DeltaStream.self, transport: "delta", requests: requests, writer: writer, fixedType: fixedType)
    }

    /// Runs one stream: the proxy's requests on this task, pushes for new generations on a task that
    /// lives only while it pushes (``serveStream(_:wakeups:onRequest:onWake:)``).
    ///
    /// The protocol work is synchronous, in ``StreamSession``; the async frames hold only the
    /// responses in flight. Every connected proxy keeps this task and its frames for as long as it is
    /// connected (see `Benchmarks/heap-profile`).
    private func serve<Protocol: DiscoveryProtocol>(
        _: Protocol.Type, transport: String, requests: RPCAsyncSequence<Protocol.Request, any Error>,
        writer: RPCWriter<Protocol.Response>, fixedType: XDSType?
    ) async throws {
        let session = StreamSession<Protocol>(streams: self, transport: transport, fixedType: fixedType, writer: writer)
        defer { session.close() }
        try await serveStream(requests, wakeups: broadcaster.wakeups,
                              onRequest: { request in try await session.write(session.respond(to: request)) },
                              onWake: { try await session.write(session.push()) })
    }

    // MARK: - Bookkeeping

    func open(_ proxy: Proxy, nodeID: String, transport: String, virtualHostDiscovery: Bool, aggregated: Bool) -> Connection {
        let id = "\(nodeID)-\(connectionCounter.next())"
        var entry = ProxySyncStatus(connectionID: id, nodeID: nodeID, proxyKind: proxy.kind.rawValue, namespace: proxy.namespace, connectedAt: Date())
        entry.transport = transport
        let handle = status.register(entry, proxy: proxy)
        metrics.connected(+1)
        let connection = Connection(id: id, proxyClass: ProxyClass(proxy), status: handle,
                                    virtualHostDiscovery: virtualHostDiscovery, aggregated: aggregated)
        log(.info, "proxy connected", connection: connection,
            metadata: ["kind": "\(proxy.kind)", "namespace": "\(proxy.namespace)", "transport": "\(transport)"])
        return connection
    }

    func close(_ connection: Connection) {
        status.remove(connectionID: connection.id)
        metrics.connected(-1)
        log(.info, "proxy disconnected", connection: connection)
    }

    fileprivate func record(_ events: [SotWStream.Event], connection: Connection, generation: ConfigGeneration) {
        for event in events {
            switch event {
            case .ack(let type, let nonce):
                connection.status.update { status in
                    status.types[type]?.acknowledge(nonce: nonce, metrics: metrics)
                }
            case .nack(let type, let nonce, let message):
                metrics.rejected(type: type)
                let names = Array(generation.config(for: connection.proxyClass, proxy: connection.proxy)[type].keys)
                let sources = Provenance.sources(of: type, names: names, message: message, for: connection.proxy, in: generation.model)
                log(.warning, "proxy rejected config", connection: connection, metadata: [
                    "type": "\(type.shortName)", "nonce": "\(nonce)", "error": "\(message)", "sources": "\(sources.map(\.description))",
                ])
                connection.status.update { status in
                    status.types[type, default: ProxySyncStatus.TypeStatus()].reject(message: message, sources: sources.map(\.description))
                }
            case .stale(let type):
                metrics.staleNonce(type: type)
            case .unknownType(let url):
                log(.debug, "request for a type SwiftPilot does not serve", connection: connection, metadata: ["type": "\(url)"])
            }
        }
    }

    fileprivate func sent(type url: String, version: String, nonce: String, count: Int, bytes: Int, connection: Connection, generation: ConfigGeneration) {
        guard let type = XDSType(rawValue: url) else { return }
        activity.add(1)
        metrics.pushed(type: type, bytes: bytes)
        log(.debug, "sent", connection: connection, metadata: ["type": "\(type.shortName)", "version": "\(version)", "nonce": "\(nonce)", "resources": "\(count)"])
        connection.status.update { status in
            status.snapshotVersion = generation.snapshotVersion
            status.types[type, default: ProxySyncStatus.TypeStatus()].recordSent(version: version, nonce: nonce, count: count)
        }
    }
}

/// One stream's state between events: its connection (opened by the stream's first request, which
/// names the proxy), its protocol state machine and its writer. Used by one request or one push at a
/// time (``serveStream(_:wakeups:onRequest:onWake:)`` guarantees it). The synchronous methods stay
/// out of line so that the async frames hold none of their locals.
private final class StreamSession<Protocol: DiscoveryProtocol>: @unchecked Sendable {
    /// The responses to one event, all built from `generation`.
    struct Batch {
        var responses: [Protocol.Response]
        var generation: ConfigGeneration
        /// When a push (rather than a request) started these responses.
        var pushStarted: ContinuousClock.Instant?
    }

    let streams: DiscoveryStreams
    let transport: String
    /// The type of a per-type service, whose requests may omit the type URL.
    let fixedType: XDSType?
    private var connection: DiscoveryStreams.Connection?
    let writer: RPCWriter<Protocol.Response>
    private var stream: Protocol?

    init(streams: DiscoveryStreams, transport: String, fixedType: XDSType?, writer: RPCWriter<Protocol.Response>) {
        self.streams = streams
        self.transport = transport
        self.fixedType = fixedType
        self.writer = writer
    }

    /// The responses to one of the proxy's requests.
    @inline(never)
    func respond(to request: Protocol.Request) throws -> Batch {
        var request = request
        let connection = try self.connection ?? open(first: request)
        streams.activity.add(1)
        let generation = streams.broadcaster.latest
        if let fixedType { request.typeURL = fixedType.typeURL }
        streams.log(.debug, "request", connection: connection, metadata: request.logMetadata)
        if stream == nil { stream = Protocol(serving: connection) }
        // Mutated in place: a copy would copy the stream's tables on every request.
        let responses = try stream!.handle(request, config: generation.config(for: connection.proxyClass, proxy: connection.proxy))
        streams.record(stream!.events, connection: connection, generation: generation)
        return Batch(responses: responses, generation: generation)
    }

    /// What the latest generation changes for this proxy (nothing before its first request).
    @inline(never)
    func push() -> Batch {
        let generation = streams.broadcaster.latest
        guard let connection, stream != nil else { return Batch(responses: [], generation: generation) }
        let started = ContinuousClock.now
        let responses = stream!.push(config: generation.config(for: connection.proxyClass, proxy: connection.proxy))
        return Batch(responses: responses, generation: generation, pushStarted: started)
    }

    /// Writes `batch` in order, recording each response sent.
    func write(_ batch: Batch) async throws {
        for response in batch.responses {
            try await writer.write(response)
            sent(response, generation: batch.generation)
        }
        finished(batch)
    }

    private func open(first request: Protocol.Request) throws -> DiscoveryStreams.Connection {
        let node = request.hasNode ? request.node : nil
        let connection = streams.open(try DiscoveryStreams.proxy(from: node), nodeID: node?.id ?? "", transport: transport,
                                      virtualHostDiscovery: try DiscoveryStreams.virtualHostDiscovery(of: node),
                                      aggregated: fixedType == nil)
        self.connection = connection
        return connection
    }

    /// Bookkeeping after `response` was written.
    @inline(never)
    func sent(_ response: Protocol.Response, generation: ConfigGeneration) {
        guard let connection else { return }
        streams.sent(type: response.typeURL, version: response.reportedVersion, nonce: response.nonce, count: response.resourceCount,
                     bytes: response.byteCount, connection: connection, generation: generation)
    }

    /// Bookkeeping after every response of `batch` was written.
    @inline(never)
    func finished(_ batch: Batch) {
        if let started = batch.pushStarted, !batch.responses.isEmpty { streams.metrics.pushTime(ContinuousClock.now - started) }
    }

    @inline(never)
    func close() {
        if let connection { streams.close(connection) }
    }
}

extension ProxySyncStatus.TypeStatus {
    /// The ACK of the response with `nonce` (an ACK of an older response changes nothing).
    mutating func acknowledge(nonce: String, metrics: XDSMetrics) {
        guard sentNonce == nonce else { return }
        if let sentAt, ackedVersion != sentVersion { metrics.converged(after: Date().timeIntervalSince(sentAt)) }
        ackedVersion = sentVersion
        ackedAt = Date()
        clearRejection()
    }

    mutating func recordSent(version: String, nonce: String, count: Int) {
        sentVersion = version
        sentNonce = nonce
        sentAt = Date()
        resourceCount = count
    }
}

// MARK: - The two protocol variants behind one interface

/// A pure discovery protocol state machine: ``SotWStream`` or ``DeltaStream``.
protocol DiscoveryProtocol: Sendable {
    associatedtype Request: DiscoveryRequestMessage
    associatedtype Response: DiscoveryResponseMessage
    /// A stream for the connection's proxy.
    init(serving connection: DiscoveryStreams.Connection)
    var events: [SotWStream.Event] { get }
    mutating func handle(_ request: Request, config: EncodedConfig) throws -> [Response]
    mutating func push(config: EncodedConfig) -> [Response]
}

protocol DiscoveryRequestMessage: Sendable {
    var node: Envoy_Config_Core_V3_Node { get }
    var hasNode: Bool { get }
    var typeURL: String { get set }
    /// Type, nonce and subscription, for the debug log.
    var logMetadata: Logger.Metadata { get }
}

protocol DiscoveryResponseMessage: Sendable {
    var typeURL: String { get }
    var nonce: String { get }
    /// `version_info` (state of the world) or `system_version_info` (delta).
    var reportedVersion: String { get }
    var resourceCount: Int { get }
    var byteCount: Int { get }
}

extension SotWStream: DiscoveryProtocol {
    init(serving connection: DiscoveryStreams.Connection) { self.init() }
}

extension DeltaStream: DiscoveryProtocol {
    /// VHDS needs delta over ADS (the route configuration names `ads` as its VHDS source) and an
    /// Envoy (proxyless gRPC has no VHDS).
    init(serving connection: DiscoveryStreams.Connection) {
        self.init(virtualHostDiscovery: connection.aggregated && connection.virtualHostDiscovery && !connection.proxy.isProxylessGRPC)
    }
}
extension SotWRequest: DiscoveryRequestMessage {
    var node: Envoy_Config_Core_V3_Node { message.node }
    var hasNode: Bool { message.hasNode }
    var typeURL: String {
        get { message.typeURL }
        set { message.typeURL = newValue }
    }

    var logMetadata: Logger.Metadata {
        ["type": "\(message.typeURL)", "nonce": "\(message.responseNonce)", "version": "\(message.versionInfo)",
         "names": encodedNames.map { "\($0.digest.count) names, encoded" } ?? "\(message.resourceNames)"]
    }
}

extension DeltaDiscoveryRequest: DiscoveryRequestMessage {
    var logMetadata: Logger.Metadata {
        ["type": "\(typeURL)", "nonce": "\(responseNonce)", "subscribe": "\(resourceNamesSubscribe)",
         "unsubscribe": "\(resourceNamesUnsubscribe)", "initialVersions": "\(initialResourceVersions.count)"]
    }
}

extension EncodedResponse: DiscoveryResponseMessage {
    var reportedVersion: String { message.leadingVersion }
    var resourceCount: Int { message.resources.count + (block?.resources.count ?? 0) }
    var byteCount: Int { Message.bodyBytes(of: message.resources) + (block?.bodyBytes ?? 0) }
}
