import BenchmarkWorkload
import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Synchronization

typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse

enum TypeURL {
    static let cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    static let endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    static let listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    static let route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    static let virtualHost = "type.googleapis.com/envoy.config.route.v3.VirtualHost"
    static func short(_ url: String) -> String {
        switch url {
        case cluster: "CDS"
        case endpoint: "EDS"
        case listener: "LDS"
        case route: "RDS"
        case virtualHost: "VHDS"
        default: url
        }
    }
}

/// Names a response leads to (EDS names of a CDS response, RDS names of an LDS response), decoded
/// once per (type, version): every proxy receives the same versions, so 1,000 proxies decode once.
final class NameCache: Sendable {
    private let cache = Mutex<[String: [String]]>([:])

    func names(for response: RawResponse) throws -> [String] {
        let key = response.typeURL + "|" + response.version
        if let names = cache.withLock({ $0[key] }) { return names }
        let decoded = try DiscoveryResponse(serializedBytes: response.bytes)
        var names: [String] = []
        for any in decoded.resources {
            if response.typeURL == TypeURL.cluster {
                let cluster = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: any)
                if cluster.type == .eds {
                    names.append(cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName)
                }
            } else if response.typeURL == TypeURL.listener {
                let listener = try Envoy_Config_Listener_V3_Listener(unpackingAny: any)
                for filter in listener.filterChains.flatMap(\.filters) where filter.typedConfig.typeURL.hasSuffix("HttpConnectionManager") {
                    let manager = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig)
                    if case .rds(let rds)? = manager.routeSpecifier { names.append(rds.routeConfigName) }
                }
            }
        }
        names = Array(Set(names)).sorted()
        cache.withLock { $0[key] = names }
        return names
    }
}

/// What the simulated proxies report: cold-sync times, the time each proxy ACKed a watched change,
/// and counts of what they received.
final class Tracker: Sendable {
    struct Watch {
        var pattern: [UInt8]
        var start: ContinuousClock.Instant
        var acked: [Int: Duration] = [:]
    }

    struct State {
        var proxies: Int
        var coldStart: ContinuousClock.Instant = .now
        var synced: [Int: Duration] = [:]
        var watch: Watch?
        var responsesByType: [String: Int] = [:]
        var resourcesByType: [String: Int] = [:]
        var bytes = 0
        var errors: [String] = []
        var connected = 0
    }

    let state: Mutex<State>

    init(proxies: Int) { state = Mutex(State(proxies: proxies)) }

    func resetColdSync() { state.withLock { $0.synced = [:]; $0.coldStart = .now } }

    func resetCounters() {
        state.withLock { $0.responsesByType = [:]; $0.resourcesByType = [:]; $0.bytes = 0 }
    }

    func watch(_ marker: String) {
        state.withLock { $0.watch = Watch(pattern: markerPattern(marker), start: .now) }
    }

    var pattern: [UInt8]? { state.withLock { $0.watch?.pattern } }

    func received(_ response: RawResponse) {
        state.withLock { state in
            state.responsesByType[response.typeURL, default: 0] += 1
            state.resourcesByType[response.typeURL, default: 0] += response.resourceCount
            state.bytes += response.bytes.count
        }
    }

    /// Counts a response; returns the watched marker's pattern when the response carries it.
    func receive(_ response: RawResponse) -> [UInt8]? {
        received(response)
        guard let pattern, response.contains(pattern) else { return nil }
        return pattern
    }

    func ackedWatched(proxy: Int, pattern: [UInt8]) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard let watch = state.watch, watch.pattern == pattern, watch.acked[proxy] == nil else { return }
            state.watch!.acked[proxy] = now - watch.start
        }
    }

    func synced(proxy: Int) {
        let now = ContinuousClock.now
        state.withLock { state in
            if state.synced[proxy] == nil { state.synced[proxy] = now - state.coldStart }
        }
    }

    func failed(_ error: String) { state.withLock { if $0.errors.count < 20 { $0.errors.append(error) } } }
    func connected(_ delta: Int) { state.withLock { $0.connected += delta } }

    /// Polls until `done` holds or `timeout` passes; returns whether it held.
    func wait(timeout: Duration, _ done: @escaping @Sendable (State) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ done($0) }) { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return state.withLock { done($0) }
    }
}

/// One simulated Envoy router on its own HTTP/2 connection, speaking ADS as its subscriber does
/// (``SotWSubscriber``, ``DeltaSubscriber``) over the client of the run (``Fleet/Client``).
struct SimulatedProxy<Subscriber: ADSSubscriber>: Sendable {
    var index: Int
    var port: Int
    var tracker: Tracker
    var subscriber: Subscriber
    var client: Fleet.Client

    /// Runs until cancelled; a failed stream (e.g. refused during a connection storm) is retried, as Envoy does.
    func run() async {
        switch client {
        case .nio:
            await runRetrying(index: index, tracker: tracker) {
                await RawADSClient.attempt(index: index, port: port, tracker: tracker, subscriber: subscriber)
            }
        case .grpc:
            await runRetrying(index: index, tracker: tracker) {
                await grpcAttempt(port: port) { client in
                    try await adsStream(client, subscriber: subscriber, index: index, tracker: tracker)
                }
            }
        }
    }
}

/// The node of router `index`: Istio-style id, gateway namespace and labels.
func routerNode(_ index: Int) -> Envoy_Config_Core_V3_Node {
    var node = Envoy_Config_Core_V3_Node()
    let proxy = Workload.router(index)
    node.id = "router~\(proxy.ipAddress)~\(proxy.id)~\(proxy.dnsDomain)"
    node.cluster = "istio-ingressgateway"
    var labels = Google_Protobuf_Struct()
    for (key, value) in Workload.routerLabels { labels.fields[key] = Google_Protobuf_Value(stringValue: value) }
    node.metadata.fields["NAMESPACE"] = Google_Protobuf_Value(stringValue: Workload.gatewayNamespace)
    node.metadata.fields["LABELS"] = Google_Protobuf_Value(structValue: labels)
    return node
}

/// One ADS stream of a simulated proxy over grpc-swift's client: sends the subscriber's first
/// request, then its answer to every response (read undecoded).
func adsStream<Subscriber: ADSSubscriber>(
    _ client: GRPCClient<HTTP2ClientTransport.Posix>, subscriber: Subscriber, index: Int, tracker: Tracker
) async throws {
    let (requests, send) = AsyncStream<Subscriber.Request>.makeStream()
    send.yield(subscriber.first())
    var options = CallOptions.defaults
    options.maxResponseMessageBytes = 1 << 30
    options.waitForReady = true
    let request = StreamingClientRequest<Subscriber.Request> { writer in
        for await next in requests { try await writer.write(next) }
    }
    try await client.bidirectionalStreaming(
        request: request, descriptor: Subscriber.method, serializer: ProtobufMessageSerializer<Subscriber.Request>(),
        deserializer: RawResponseDeserializer(), options: options
    ) { response in
        tracker.connected(+1)
        defer { tracker.connected(-1); send.finish() }
        var subscriber = subscriber
        for try await message in response.messages {
            let watched = tracker.receive(message)
            for next in try subscriber.receive(message) { send.yield(next) }
            if let watched { tracker.ackedWatched(proxy: index, pattern: watched) }
            if subscriber.synced { tracker.synced(proxy: index) }
        }
    }
}

/// Runs one proxy until cancelled: `attempt` opens its connection and stream and returns when they
/// end, with why when they failed; a failure is recorded and retried after 100–199 ms (as Envoy
/// retries, e.g. when refused during a connection storm).
func runRetrying(index: Int, tracker: Tracker, _ attempt: () async -> String?) async {
    while !Task.isCancelled {
        if let failure = await attempt(), !Task.isCancelled { tracker.failed("proxy stream failed and was retried: \(failure)") }
        try? await Task.sleep(for: .milliseconds(100 + index % 100))
    }
}

/// One attempt over grpc-swift's client, on its own HTTP/2 connection: nil when it ended without
/// failing (or was cancelled).
func grpcAttempt(port: Int, stream: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void) async -> String? {
    do {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            try await stream(client)
            client.beginGracefulShutdown()
        }
        return nil
    } catch is CancellationError {
        return nil
    } catch let error as RPCError where error.code == .cancelled {
        return nil
    } catch {
        return "\(error)"
    }
}

/// N simulated proxies, started together, stopped together.
final class Fleet: Sendable {
    /// How the simulated proxies speak to the server.
    enum Transport: String, Sendable, CaseIterable {
        /// State-of-the-world ADS (``SimulatedProxy``).
        case sotw
        /// Incremental ADS with VHDS (``DeltaSimulatedProxy``).
        case delta
    }

    /// The HTTP/2 client the simulated proxies run on.
    enum Client: String, Sendable, CaseIterable {
        /// HTTP/2 written directly on SwiftNIO (``RawADSClient``): each response is read and
        /// answered on the connection's event loop.
        case nio
        /// grpc-swift 2's client (HTTP/2 transport on SwiftNIO), a task per stream and per direction.
        case grpc
    }

    let tracker: Tracker
    let names = NameCache()
    let deltaNames = DeltaNameCache()
    let transport: Transport
    let client: Client
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(proxies: Int, transport: Transport = .sotw, client: Client = .nio) {
        tracker = Tracker(proxies: proxies)
        self.transport = transport
        self.client = client
    }

    var count: Int { tracker.state.withLock { $0.proxies } }

    func start(port: Int) {
        tracker.resetColdSync()
        let (count, tracker, names, deltaNames, transport, client) = (self.count, self.tracker, self.names, self.deltaNames, self.transport, self.client)
        task.withLock {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    for index in 0..<count {
                        switch transport {
                        case .sotw:
                            let proxy = SimulatedProxy(index: index, port: port, tracker: tracker, subscriber: SotWSubscriber(index: index, names: names), client: client)
                            group.addTask { await proxy.run() }
                        case .delta:
                            let proxy = SimulatedProxy(index: index, port: port, tracker: tracker, subscriber: DeltaSubscriber(index: index, names: deltaNames), client: client)
                            group.addTask { await proxy.run() }
                        }
                    }
                }
            }
        }
    }

    func stop() async {
        guard let running = task.withLock({ current -> Task<Void, Never>? in defer { current = nil }; return current }) else { return }
        running.cancel()
        await running.value
    }

    func waitSynced(timeout: Duration) async -> Bool {
        await tracker.wait(timeout: timeout) { $0.synced.count == $0.proxies }
    }
}
