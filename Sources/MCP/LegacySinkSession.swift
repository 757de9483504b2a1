import EnvoyAPI
import Foundation
import GRPCCore
import IstioAPI
import Logging
import Snapshot
import Synchronization

public typealias RequestResources = Istio_Mcp_V1alpha1_RequestResources
public typealias Resources = Istio_Mcp_V1alpha1_Resources

/// The sink side of the legacy `istio.mcp.v1alpha1` protocol (Galley-era), shared by the sink that
/// dials a `ResourceSource` and the `ResourceSink` endpoint that sources dial.
///
/// One request per collection opens the stream; every `Resources` gets exactly one ACK or NACK.
/// The opening requests ask for full state (Istio's source sends incremental answers without
/// removals to a collection's first request on a new stream, so deletions made while
/// disconnected would linger); ACKs then ask for incremental delivery. A full-state response
/// replaces the collection, an incremental one patches it.
///
/// With `resume`, for sources known to honour `initial_resource_versions` (SwiftPilot's own), the
/// opening requests ask for incremental delivery and say what the sink holds.
public final class LegacySinkSession: Sendable {
    public let id: String
    public let kinds: [ConfigKind]
    public let incremental: Bool
    public let resume: Bool
    let aggregator: ConfigAggregator
    let logger: Logger
    private let versions = Mutex<[ConfigKind: [String: String]]>([:])

    public init(id: String, kinds: [ConfigKind] = ConfigKind.networking, incremental: Bool = true, resume: Bool = false,
                aggregator: ConfigAggregator, logger: Logger = Logger(label: "swiftpilot.mcp")) {
        self.id = id
        self.kinds = kinds
        self.incremental = incremental
        self.resume = resume && incremental
        self.aggregator = aggregator
        var logger = logger
        logger[metadataKey: "source"] = "\(id)"
        self.logger = logger
    }

    var sinkNode: Istio_Mcp_V1alpha1_SinkNode {
        var node = Istio_Mcp_V1alpha1_SinkNode()
        node.id = "swiftpilot"
        return node
    }

    /// The requests that open a stream, one per collection, sent before reading anything.
    public func initialRequests() -> [RequestResources] {
        let held = versions.withLock { $0 }
        return kinds.map { kind in
            var request = RequestResources()
            request.sinkNode = sinkNode
            request.collection = kind.legacyCollection
            request.incremental = resume
            if resume, let known = held[kind], !known.isEmpty { request.initialResourceVersions = known }
            return request
        }
    }

    /// Applies one `Resources` message and returns its ACK or NACK.
    public func handle(_ message: Resources) -> RequestResources {
        var reply = RequestResources()
        reply.sinkNode = sinkNode
        reply.collection = message.collection
        reply.responseNonce = message.nonce
        guard let kind = ConfigKind(legacyCollection: message.collection), kinds.contains(kind) else {
            return nack(reply, code: .unimplemented, "unsupported collection \(message.collection)")
        }
        let location = "\(id) \(message.collection) \(message.systemVersionInfo)"
        do {
            let (resources, errors) = try MCPEnvelope.decode(message.resources, kind: kind, location: location, origin: id, strictBodies: true)
            aggregator.recordRejections(source: id, scope: "decode:\(message.collection)", errors)
            let diff: SnapshotDiff
            if message.incremental {
                diff = aggregator.patch(source: id, kind: kind, upsert: resources, remove: message.removedResources)
                versions.withLock { versions in
                    for resource in resources { versions[kind, default: [:]][resource.key.resourceName] = resource.version }
                    for name in message.removedResources { versions[kind]?.removeValue(forKey: name) }
                }
            } else {
                diff = aggregator.replace(source: id, kind: kind, with: resources)
                versions.withLock { versions in
                    versions[kind] = Dictionary(resources.map { ($0.key.resourceName, $0.version) }, uniquingKeysWith: { a, _ in a })
                }
            }
            logger.info("applied MCP collection", metadata: [
                "collection": "\(message.collection)", "incremental": "\(message.incremental)", "resources": "\(resources.count)",
                "removed": "\(message.removedResources.count)", "rejected": "\(errors.count)",
                "snapshot": "\(diff.isEmpty ? "unchanged" : "v\(diff.to)")",
            ])
            reply.incremental = incremental
            return reply
        } catch {
            aggregator.recordRejections(source: id, scope: "decode:\(message.collection)", [ConfigDecodingError(location: location, reason: "\(error)")])
            aggregator.markSynced(source: id, kind: kind)
            return nack(reply, code: .unknown, "\(location): \(error)")
        }
    }

    private func nack(_ reply: RequestResources, code: RPCError.Code, _ message: String) -> RequestResources {
        var reply = reply
        if reply.collection != LegacySinkSession.triggerCollection {
            logger.warning("NACK", metadata: ["collection": "\(reply.collection)", "error": "\(message)"])
        }
        reply.errorDetail.code = Int32(code.rawValue)
        reply.errorDetail.message = message
        return reply
    }

    /// What a source that dials a sink sends first, only to establish the stream.
    public static let triggerCollection = "$triggerCollection"
}

/// A legacy MCP sink that dials a `ResourceSource` (`mcp://host:port`), reconnecting with back-off.
public struct LegacyMCPSink: Sendable {
    public let session: LegacySinkSession
    public let connection: SourceConnection

    public init(session: LegacySinkSession, connection: SourceConnection) {
        self.session = session
        self.connection = connection
    }

    public func run() async {
        var backoff = Backoff()
        while !Task.isCancelled {
            let received = Flag()
            do {
                try await withGRPCClient(transport: try connection.makeTransport()) { client in
                    let source = Istio_Mcp_V1alpha1_ResourceSource.Client(wrapping: client)
                    let (outgoing, send) = AsyncStream<RequestResources>.makeStream()
                    for request in session.initialRequests() { send.yield(request) }
                    var options = CallOptions.defaults
                    options.maxResponseMessageBytes = connection.maxMessageBytes
                    try await source.establishResourceStream(
                        request: StreamingClientRequest { writer in
                            for await request in outgoing { try await writer.write(request) }
                        },
                        options: options
                    ) { response in
                        defer { send.finish() }
                        for try await message in response.messages {
                            if !received.set() { session.logger.info("MCP stream established") }
                            send.yield(session.handle(message))
                        }
                    }
                }
            } catch where Task.isCancelled {
                return
            } catch {
                session.logger.warning("MCP stream failed", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { return }
            if received.value { backoff.reset() }
            let delay = backoff.next()
            session.logger.warning("MCP stream ended; reconnecting", metadata: ["in_seconds": "\(String(format: "%.2f", delay))"])
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }
}

/// The `istio.mcp.v1alpha1.ResourceSink` endpoint: sources dial in and push collections.
///
/// Handshake: the source sends a trigger `Resources{collection: "$triggerCollection"}`; the sink
/// sends its request for every collection, then NACKs the trigger (unknown collection), which the
/// source drops. Each dialling host is a config source of its own, named `mcp-sink:<peer address>`:
/// a source that reconnects replaces what it delivered before (its first response is full state).
public struct LegacyMCPSinkService: Istio_Mcp_V1alpha1_ResourceSink.SimpleServiceProtocol {
    let aggregator: ConfigAggregator
    let kinds: [ConfigKind]

    public init(aggregator: ConfigAggregator, kinds: [ConfigKind] = ConfigKind.networking) {
        self.aggregator = aggregator
        self.kinds = kinds
    }

    public func establishResourceStream(request: RPCAsyncSequence<Resources, any Error>, response: RPCWriter<RequestResources>,
                                        context: ServerContext) async throws {
        let peer = context.remotePeer
        let host = peer.lastIndex(of: ":").map { String(peer[..<$0]) } ?? peer
        let session = LegacySinkSession(id: "mcp-sink:\(host)", kinds: kinds, aggregator: aggregator)
        session.logger.info("MCP source dialled in")
        for initial in session.initialRequests() { try await response.write(initial) }
        for try await message in request { try await response.write(session.handle(message)) }
        session.logger.info("MCP source disconnected")
    }
}
