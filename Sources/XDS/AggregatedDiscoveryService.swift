import EnvoyAPI
import Foundation
import GRPCCore
import Logging
import Mesh
import Synchronization

/// `envoy.service.discovery.v3.AggregatedDiscoveryService`: one stream per proxy, every type on it.
public struct AggregatedDiscoveryService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let broadcaster: GenerationBroadcaster
    let status: SyncStatusRegistry
    let metrics: XDSMetrics
    let logger: Logger
    private let connectionCounter = AtomicCounter()

    public init(broadcaster: GenerationBroadcaster, status: SyncStatusRegistry, metrics: XDSMetrics = XDSMetrics(),
                logger: Logger = Logger(label: "swiftpilot.xds")) {
        self.broadcaster = broadcaster
        self.status = status
        self.metrics = metrics
        self.logger = logger
    }

    private enum Input: Sendable {
        case request(DiscoveryRequest)
        case generation
        case closed
    }

    /// The proxy named by the first request of a stream, or a gRPC `INVALID_ARGUMENT` saying what is wrong.
    static func proxy(from first: DiscoveryRequest) throws -> Proxy {
        guard first.hasNode, !first.node.id.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "the first DiscoveryRequest of a stream must carry node.id")
        }
        do {
            return try Proxy(node: first.node)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
    }

    public func streamAggregatedResources(
        request: RPCAsyncSequence<DiscoveryRequest, any Error>,
        response: RPCWriter<DiscoveryResponse>,
        context: ServerContext
    ) async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        let wakeups = broadcaster.subscribe()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { input.yield(.closed) }
                for try await next in request { input.yield(.request(next)) }
            }
            group.addTask {
                for await _ in wakeups { input.yield(.generation) }
            }
            defer { group.cancelAll() }
            var connection: Connection?
            var stream = SotWStream()
            loop: for await event in inputs {
                switch event {
                case .closed:
                    break loop
                case .request(let request):
                    if connection == nil { connection = try open(Self.proxy(from: request), nodeID: request.node.id) }
                    guard let connection else { break loop }
                    let generation = broadcaster.latest
                    let responses = stream.handle(request, config: generation.config(for: connection.proxy))
                    record(stream.events, connection: connection)
                    try await send(responses, on: response, connection: connection, generation: generation)
                case .generation:
                    guard let connection else { continue loop }
                    let generation = broadcaster.latest
                    try await send(stream.push(config: generation.config(for: connection.proxy)), on: response,
                                   connection: connection, generation: generation)
                }
            }
            if let connection { close(connection) }
        }
    }

    public func deltaAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "delta xDS is not served yet; use state of the world")
    }

    // MARK: - Connection bookkeeping

    struct Connection: Sendable {
        var id: String
        var proxy: Proxy
        var logger: Logger
    }

    private func open(_ proxy: Proxy, nodeID: String) -> Connection {
        let id = "\(nodeID)-\(connectionCounter.next())"
        var logger = self.logger
        logger[metadataKey: "proxy"] = "\(id)"
        status.register(ProxySyncStatus(connectionID: id, nodeID: nodeID, proxyKind: proxy.kind.rawValue,
                                        namespace: proxy.namespace, connectedAt: Date()))
        metrics.connected(+1)
        logger.info("proxy connected", metadata: ["kind": "\(proxy.kind)", "namespace": "\(proxy.namespace)"])
        return Connection(id: id, proxy: proxy, logger: logger)
    }

    private func close(_ connection: Connection) {
        status.remove(connectionID: connection.id)
        metrics.connected(-1)
        connection.logger.info("proxy disconnected")
    }

    private func record(_ events: [SotWStream.Event], connection: Connection) {
        for event in events {
            switch event {
            case .ack(let type, let version):
                status.update(connectionID: connection.id) { status in
                    var entry = status.types[type.shortName] ?? ProxySyncStatus.TypeStatus()
                    if let sentAt = entry.sentAt, entry.sentVersion == version, entry.ackedVersion != version {
                        metrics.converged(after: Date().timeIntervalSince(sentAt))
                    }
                    entry.ackedVersion = version
                    entry.ackedAt = Date()
                    entry.nack = nil
                    entry.nackedVersion = nil
                    status.types[type.shortName] = entry
                }
            case .nack(let type, let version, let message):
                metrics.rejected(type: type)
                connection.logger.warning("proxy rejected config", metadata: ["type": "\(type.shortName)", "version": "\(version)", "error": "\(message)"])
                status.update(connectionID: connection.id) { status in
                    var entry = status.types[type.shortName] ?? ProxySyncStatus.TypeStatus()
                    entry.nack = message
                    entry.nackedVersion = version
                    status.types[type.shortName] = entry
                }
            case .stale(let type):
                metrics.staleNonce(type: type)
            case .unknownType(let url):
                connection.logger.debug("request for a type SwiftPilot does not serve", metadata: ["type": "\(url)"])
            }
        }
    }

    private func send(_ responses: [DiscoveryResponse], on writer: RPCWriter<DiscoveryResponse>,
                      connection: Connection, generation: ConfigGeneration) async throws {
        for response in responses {
            guard let type = XDSType(rawValue: response.typeURL) else { continue }
            try await writer.write(response)
            metrics.pushed(type: type, bytes: response.resources.reduce(0) { $0 + $1.value.count })
            connection.logger.debug("sent", metadata: ["type": "\(type.shortName)", "version": "\(response.versionInfo)",
                                                       "nonce": "\(response.nonce)", "resources": "\(response.resources.count)"])
            status.update(connectionID: connection.id) { status in
                status.snapshotVersion = generation.snapshotVersion
                var entry = status.types[type.shortName] ?? ProxySyncStatus.TypeStatus()
                entry.sentVersion = response.versionInfo
                entry.sentNonce = response.nonce
                entry.sentAt = Date()
                entry.resourceCount = response.resources.count
                status.types[type.shortName] = entry
            }
        }
    }
}
