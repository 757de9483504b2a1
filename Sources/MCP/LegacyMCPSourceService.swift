import Foundation
import GRPCCore
import IstioAPI
import Snapshot
import SwiftProtobuf

/// The legacy `istio.mcp.v1alpha1.ResourceSource` side of ``MCPSource``: sinks dial in and
/// subscribe per collection.
///
/// Per collection one response is in flight at a time; a request with another nonce than the
/// pending one is stale and ignored. A NACKed version is not sent again. Incremental delivery is
/// used when the sink asks for it and knows something: after an ACK, or on a new stream whose
/// `initial_resource_versions` say what it holds (session resumption, removals included);
/// otherwise the collection goes in full. Resource versions are content hashes.
struct LegacyMCPSourceService: Istio_Mcp_V1alpha1_ResourceSource.SimpleServiceProtocol {
    let source: MCPSource

    static func version(of resource: ConfigResource) -> String { String(resource.contentHash, radix: 16) }

    /// The envelope with the content-hash version the sink will report back on resumption.
    static func envelope(_ resource: ConfigResource, body: Google_Protobuf_Any) -> Istio_Mcp_V1alpha1_Resource {
        var envelope = MCPEnvelope.envelope(resource, body: body)
        envelope.metadata.version = version(of: resource)
        return envelope
    }

    func establishResourceStream(request: RPCAsyncSequence<RequestResources, any Error>, response: RPCWriter<Resources>,
                                 context: ServerContext) async throws {
        let session = LegacyMCPSourceSession(source: source, writer: response)
        try await serveStream(request, wakeups: source.wakeups,
                              onRequest: { try await session.handle($0) },
                              onWake: { try await session.push() })
    }
}

/// One sink's legacy MCP stream: per collection, the response in flight and what the sink holds.
/// Used by one request or one push at a time (``serveStream(_:wakeups:onRequest:onWake:)``
/// guarantees it).
private final class LegacyMCPSourceSession: @unchecked Sendable {
    struct CollectionState {
        var pendingNonce: String?
        /// What the sink holds: name → version.
        var acked: [String: String] = [:]
        /// What the pending response leaves the sink with, once ACKed.
        var pendingMap: [String: String] = [:]
        var sentVersion: UInt64?
        var incremental = false
    }

    let source: MCPSource
    let writer: RPCWriter<Resources>
    var states: [ConfigKind: CollectionState] = [:]
    var nonce: UInt64 = 0

    init(source: MCPSource, writer: RPCWriter<Resources>) {
        self.source = source
        self.writer = writer
    }

    /// A request: a first one (no nonce) opens or restarts the collection and is answered at once;
    /// an ACK or NACK of the pending response is noted and followed by the newer collection, if any;
    /// another nonce is stale and ignored.
    func handle(_ request: RequestResources) async throws {
        guard let kind = ConfigKind(legacyCollection: request.collection) else {
            throw RPCError(code: .invalidArgument, message: "unsupported collection \(request.collection)")
        }
        var state = states[kind] ?? CollectionState()
        if request.responseNonce.isEmpty {
            state = CollectionState()
            state.incremental = request.incremental
            if request.incremental { state.acked = request.initialResourceVersions }
            try await respond(kind, &state)
        } else if request.responseNonce == state.pendingNonce {
            state.pendingNonce = nil
            state.incremental = request.incremental
            if request.hasErrorDetail {
                source.logger.warning("sink rejected a collection", metadata: ["collection": "\(request.collection)", "error": "\(request.errorDetail.message)"])
            } else {
                state.acked = state.pendingMap
            }
            if source.collection(kind).version != state.sentVersion { try await respond(kind, &state) }
        }
        states[kind] = state
    }

    /// A publish: every subscribed collection that changed and has no response in flight.
    func push() async throws {
        for kind in states.keys.sorted() {
            var state = states[kind]!
            guard state.pendingNonce == nil, source.collection(kind).version != state.sentVersion else { continue }
            try await respond(kind, &state)
            states[kind] = state
        }
    }

    private func respond(_ kind: ConfigKind, _ state: inout CollectionState) async throws {
        let collection = source.collection(kind)
        var message = Resources()
        message.collection = kind.legacyCollection
        message.systemVersionInfo = "\(kind.legacyCollection)/\(collection.version)"
        let current = Dictionary(collection.resources.map { ($0.key.resourceName, LegacyMCPSourceService.version(of: $0)) }, uniquingKeysWith: { a, _ in a })
        if state.incremental, !state.acked.isEmpty {
            message.incremental = true
            message.resources = zip(collection.resources, collection.bodies)
                .filter { resource, _ in state.acked[resource.key.resourceName] != current[resource.key.resourceName] }
                .map(LegacyMCPSourceService.envelope)
            message.removedResources = state.acked.keys.filter { current[$0] == nil }.sorted()
        } else {
            message.resources = zip(collection.resources, collection.bodies).map(LegacyMCPSourceService.envelope)
        }
        nonce += 1
        message.nonce = String(nonce)
        state.pendingNonce = message.nonce
        state.pendingMap = current
        state.sentVersion = collection.version
        try await writer.write(message)
    }
}
