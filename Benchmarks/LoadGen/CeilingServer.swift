import BenchmarkWorkload
import ArgumentParser
import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Mesh
import NIOCore
import Snapshot
import SwiftProtobuf
import Synchronization
import Translation
import XDS

/// The ceiling of item 4: a minimal ADS server that only writes pre-encoded responses. It
/// translates and encodes the same workload once at start (not timed), answers the first request of
/// each type with the full response of that type, ignores ACKs and later subscription changes, and
/// on a `push <change>` line on standard input writes the pre-encoded response of the change to
/// every stream that has the type.
///
/// Changes prepared at start: `rds` = VirtualService 0 edited with marker `ceiling-vs-mark`;
/// `eds` = the first endpoint of service 0 moved to `ceiling-eds-address`. What a change sends is
/// what SwiftPilot sends for it on the same transport, the resources whose version changed:
/// - state of the world (``Mode/sotw``): the whole `http.8080` route configuration; the CLAs of
///   service 0's clusters (RDS and EDS are not full-state types: a SotW response of them need not
///   repeat the resources that did not change);
/// - delta (``Mode/delta``, with VHDS, as SwiftPilot serves Envoy over delta ADS): the one virtual
///   host; the CLAs of service 0's clusters.
final class CeilingServer: Sendable {
    static let vsMarker = "ceiling-vs-mark"
    static let edsAddress = Workload.movedAddress(sequence: 65_000)

    enum Mode: String, Sendable, ExpressibleByArgument {
        case sotw, delta
    }

    /// Serialized responses by type URL.
    typealias Responses = [String: [UInt8]]

    private struct State {
        /// What a type's first request is answered with.
        var initial: Responses
        /// What a push writes to the streams that have the type.
        var pushed: Responses
        var subscribers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextID: UInt64 = 0
    }

    let mode: Mode
    /// Per change: the responses that answer a new subscriber after it, and those a push writes.
    let changes: [String: (initial: Responses, pushed: Responses)]
    private let state: Mutex<State>

    init(workload: Workload, mode: Mode) {
        self.mode = mode
        let proxy = Workload.router(0)
        var vsSnapshot = workload.snapshot()
        vsSnapshot = vsSnapshot.replacing(workload.virtualService(0, marker: Self.vsMarker))
        var edsSnapshot = workload.snapshot()
        edsSnapshot = edsSnapshot.replacing(workload.serviceEntry(0, firstEndpoint: Self.edsAddress))
        func config(_ snapshot: Snapshot) -> EncodedConfig {
            EncodedConfig(Translator.config(for: proxy, in: MeshModel(snapshot: snapshot)))
        }
        let base = config(workload.snapshot())
        /// A change's full responses (for the types it touches) and what a push of it writes: the
        /// changed resources (over SotW, of the one type).
        func prepare(_ changed: EncodedConfig, touching sotwType: String) -> (initial: Responses, pushed: Responses) {
            let full = Self.encode(changed, mode: mode, version: "2")
            let changedOnly = Self.encode(changed, mode: mode, version: "2", since: base)
            let pushed = mode == .sotw ? [sotwType: changedOnly[sotwType]!] : changedOnly
            return (full.filter { pushed[$0.key] != nil }, pushed)
        }
        changes = ["rds": prepare(config(vsSnapshot), touching: TypeURL.route),
                   "eds": prepare(config(edsSnapshot), touching: TypeURL.endpoint)]
        let initial = Self.encode(base, mode: mode, version: "1")
        state = Mutex(State(initial: initial, pushed: [:]))
    }

    /// The resources of each type a router gets; over delta, route configurations in their VHDS
    /// form and the virtual hosts as VHDS resources.
    private static func resources(_ config: EncodedConfig, delta: Bool) -> [(String, [EncodedResource])] {
        func sorted(_ resources: [String: EncodedResource]) -> [EncodedResource] { resources.values.sorted { $0.name < $1.name } }
        var types: [(String, [EncodedResource])] = [
            (TypeURL.cluster, sorted(config[.cluster])), (TypeURL.endpoint, sorted(config[.endpoint])),
            (TypeURL.listener, sorted(config[.listener])),
            (TypeURL.route, sorted(delta ? config.discoveredRoutes : config[.route])),
        ]
        if delta { types.append((TypeURL.virtualHost, sorted(config[.virtualHost]))) }
        return types
    }

    /// Responses per type in `mode`: every resource, or with `since` (delta) those whose version
    /// differs from it, leaving out types without such resources.
    static func encode(_ config: EncodedConfig, mode: Mode, version: String, since previous: EncodedConfig? = nil) -> Responses {
        let delta = mode == .delta
        let before = previous.map { Dictionary(resources($0, delta: delta), uniquingKeysWith: { a, _ in a }) }
        var out: Responses = [:]
        for (type, resources) in resources(config, delta: delta) {
            let old = Dictionary((before?[type] ?? []).map { ($0.name, $0.version) }, uniquingKeysWith: { a, _ in a })
            let changed = previous == nil ? resources : resources.filter { old[$0.name] != $0.version }
            guard !changed.isEmpty else { continue }
            let nonce = "\(TypeURL.short(type))-\(version)"
            if delta {
                var response = DeltaDiscoveryResponse()
                (response.typeURL, response.systemVersionInfo, response.nonce) = (type, version, nonce)
                response.resources = changed.map(\.deltaResource)
                out[type] = (try? response.serializedBytes()) ?? []
            } else {
                var response = DiscoveryResponse()
                (response.typeURL, response.versionInfo, response.nonce) = (type, version, nonce)
                response.resources = changed.map(\.any)
                out[type] = (try? response.serializedBytes()) ?? []
            }
        }
        return out
    }

    func push(_ change: String) {
        guard let prepared = changes[change] else { return }
        state.withLock { state in
            state.initial.merge(prepared.initial) { _, new in new }
            state.pushed = prepared.pushed
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

    private var current: (initial: Responses, pushed: Responses) { state.withLock { ($0.initial, $0.pushed) } }

    private enum Input<Request: Sendable>: Sendable { case request(Request), wake, closed }

    /// One ADS stream (either protocol). `opens` tells the type a request opens (its first request
    /// of a type), nil for the rest (ACKs, subscription changes), which are ignored.
    func stream<Request: Sendable>(_ requests: RPCAsyncSequence<Request, any Error>, writer: RPCWriter<RawBytes>,
                                   opens: @escaping @Sendable (Request) -> String?) async throws {
        let (inputs, input) = AsyncStream<Input<Request>>.makeStream()
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
                    guard let type = opens(request), sent[type] == nil, let bytes = current.initial[type] else { continue }
                    sent[type] = bytes
                    try await writer.write(RawBytes(bytes: bytes))
                case .wake:
                    let pushed = current.pushed
                    for type in [TypeURL.cluster, TypeURL.endpoint, TypeURL.listener, TypeURL.route, TypeURL.virtualHost] {
                        guard let previous = sent[type], let bytes = pushed[type], previous != bytes else { continue }
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
            register(Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.StreamAggregatedResources.descriptor,
                     with: &router) { (request: DiscoveryRequest) in request.responseNonce.isEmpty ? request.typeURL : nil }
            register(Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.DeltaAggregatedResources.descriptor,
                     with: &router) { (request: DeltaDiscoveryRequest) in request.responseNonce.isEmpty ? request.typeURL : nil }
        }

        private func register<Request: SwiftProtobuf.Message, Transport: ServerTransport>(
            _ method: MethodDescriptor, with router: inout RPCRouter<Transport>, opens: @escaping @Sendable (Request) -> String?
        ) {
            let server = self.server
            router.registerHandler(forMethod: method, deserializer: ProtobufMessageDeserializer<Request>(), serializer: RawBytesSerializer()) { request, _ in
                StreamingServerResponse(of: RawBytes.self) { writer in
                    try await server.stream(request.messages, writer: writer, opens: opens)
                    return [:]
                }
            }
        }
    }

    /// Serves on 127.0.0.1:`port` until standard input closes; reads `push <rds|eds>` lines.
    func serve(port: Int) async throws {
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext,
            config: .defaults {
                $0.rpc.maxRequestPayloadSize = 64 << 20
                // The same listen queue as SwiftPilot's, so a connection storm meets the same kernel.
                $0.channelDebuggingCallbacks.onBindTCPListener = { channel in
                    channel.setOption(ChannelOptions.backlog, value: DiscoveryServer.listenBacklog)
                }
            })
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
