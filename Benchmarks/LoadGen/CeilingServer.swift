import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Mesh
import Snapshot
import SwiftProtobuf
import Synchronization
import Translation

/// The ceiling of item 4: a minimal ADS server that only writes pre-encoded `DiscoveryResponse`
/// bytes. It translates and encodes the same workload once at start (not timed), answers the first
/// request of each type with the full response of that type, ignores ACKs, and on a `push <type>`
/// line on standard input writes the pre-encoded changed response to every subscribed stream.
///
/// Changes prepared at start: `rds` = VirtualService 0 edited with marker `ceiling-vs-mark`
/// (the whole `http.8080` route configuration, as SwiftPilot's SotW RDS sends it); `eds` = the
/// first endpoint of service 0 moved to `ceiling-eds-address` (every CLA, as SwiftPilot's SotW EDS
/// sends it).
final class CeilingServer: Sendable {
    static let vsMarker = "ceiling-vs-mark"
    static let edsAddress = Workload.movedAddress(sequence: 65_000)

    struct Responses: Sendable {
        var byType: [String: [UInt8]]
    }

    private struct State {
        var current: Responses
        var subscribers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextID: UInt64 = 0
    }

    let initial: Responses
    let changed: [String: [UInt8]]
    private let state: Mutex<State>

    init(workload: Workload) {
        let proxy = Workload.router(0)
        let base = CeilingServer.encode(workload.snapshot(), proxy: proxy, version: "1")
        var vsSnapshot = workload.snapshot()
        vsSnapshot = vsSnapshot.replacing(workload.virtualService(0, marker: Self.vsMarker))
        var edsSnapshot = workload.snapshot()
        edsSnapshot = edsSnapshot.replacing(workload.serviceEntry(0, firstEndpoint: Self.edsAddress))
        let rds = CeilingServer.encode(vsSnapshot, proxy: proxy, version: "2").byType[TypeURL.route]!
        let eds = CeilingServer.encode(edsSnapshot, proxy: proxy, version: "2").byType[TypeURL.endpoint]!
        initial = base
        changed = ["rds": rds, "eds": eds]
        state = Mutex(State(current: base))
    }

    /// Full SotW responses per type, encoded once.
    static func encode(_ snapshot: Snapshot, proxy: Proxy, version: String) -> Responses {
        let config = Translator.config(for: proxy, in: MeshModel(snapshot: snapshot))
        func response(_ type: String, _ messages: [any SwiftProtobuf.Message]) -> [UInt8] {
            var response = DiscoveryResponse()
            response.typeURL = type
            response.versionInfo = version
            response.nonce = "\(TypeURL.short(type))-\(version)"
            response.resources = messages.map(Packing.any)
            return (try? response.serializedBytes()) ?? []
        }
        return Responses(byType: [
            TypeURL.cluster: response(TypeURL.cluster, config.clusters),
            TypeURL.endpoint: response(TypeURL.endpoint, config.endpoints),
            TypeURL.listener: response(TypeURL.listener, config.listeners),
            TypeURL.route: response(TypeURL.route, config.routes),
        ])
    }

    func push(_ change: String) {
        guard let bytes = changed[change] else { return }
        let type = change == "rds" ? TypeURL.route : TypeURL.endpoint
        state.withLock { state in
            state.current.byType[type] = bytes
            for continuation in state.subscribers.values { continuation.yield() }
        }
    }

    private func subscribe() -> (AsyncStream<Void>, UInt64) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        return (stream, id)
    }

    private func unsubscribe(_ id: UInt64) { _ = state.withLock { $0.subscribers.removeValue(forKey: id) } }

    private var current: Responses { state.withLock { $0.current } }

    private enum Input: Sendable { case request(DiscoveryRequest), wake, closed }

    /// One ADS stream.
    func stream(_ requests: RPCAsyncSequence<DiscoveryRequest, any Error>, writer: RPCWriter<RawBytes>) async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        let (wakeups, id) = subscribe()
        defer { unsubscribe(id) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { input.yield(.closed) }
                for try await request in requests { input.yield(.request(request)) }
            }
            group.addTask { for await _ in wakeups { input.yield(.wake) } }
            defer { group.cancelAll() }
            var sent: [String: [UInt8]] = [:]
            loop: for await event in inputs {
                switch event {
                case .closed:
                    break loop
                case .request(let request):
                    guard request.responseNonce.isEmpty, sent[request.typeURL] == nil, let bytes = current.byType[request.typeURL] else { continue }
                    sent[request.typeURL] = bytes
                    try await writer.write(RawBytes(bytes: bytes))
                case .wake:
                    let now = current
                    for type in [TypeURL.cluster, TypeURL.endpoint, TypeURL.listener, TypeURL.route] {
                        guard let previous = sent[type], let bytes = now.byType[type], previous != bytes else { continue }
                        sent[type] = bytes
                        try await writer.write(RawBytes(bytes: bytes))
                    }
                }
            }
        }
    }

    struct Service: RegistrableRPCService {
        let server: CeilingServer
        func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
            let server = self.server
            router.registerHandler(
                forMethod: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.StreamAggregatedResources.descriptor,
                deserializer: ProtobufMessageDeserializer<DiscoveryRequest>(), serializer: RawBytesSerializer()
            ) { request, _ in
                StreamingServerResponse(of: RawBytes.self) { writer in
                    try await server.stream(request.messages, writer: writer)
                    return [:]
                }
            }
        }
    }

    /// Serves on 127.0.0.1:`port` until standard input closes; reads `push <rds|eds>` lines.
    func serve(port: Int) async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext,
            config: .defaults { $0.rpc.maxRequestPayloadSize = 64 << 20 })
        let server = GRPCServer(transport: transport, services: [Service(server: self)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            _ = try await transport.listeningAddress
            print("ceiling server listening on \(port)")
            fflush(stdout)
            group.addTask {
                let (lines, sink) = AsyncStream<String>.makeStream()
                Thread.detachNewThread {
                    while let line = readLine() { sink.yield(line) }
                    sink.finish()
                }
                for await line in lines {
                    let words = line.split(separator: " ")
                    if words.first == "push", words.count == 2 { self.push(String(words[1])) }
                }
                server.beginGracefulShutdown()
            }
        }
    }
}

extension Snapshot {
    /// The snapshot with one resource replaced (same version; for one-off encodings).
    func replacing(_ resource: ConfigResource) -> Snapshot {
        var collections = self.collections
        collections[resource.key.kind, default: Collection(version: 1)].resources[resource.key.resourceName] = resource
        return Snapshot(version: version + 1, collections: collections)
    }
}
