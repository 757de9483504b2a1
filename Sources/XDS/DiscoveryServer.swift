import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import Snapshot

/// The ADS server: serves the latest snapshot's config to every connected proxy and pushes each
/// debounced snapshot change.
public final class DiscoveryServer: Sendable {
    public let broadcaster: GenerationBroadcaster
    public let status = SyncStatusRegistry()
    let store: SnapshotStore
    let debouncer: PushDebouncer
    let transport: HTTP2ServerTransport.Posix
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let logger: Logger
    let trimmer: HeapTrimmer

    /// - Parameters:
    ///   - host, port: where to listen (port 0 picks a free one; see ``listeningPort()``).
    public init(store: SnapshotStore, host: String, port: Int, debouncer: PushDebouncer = PushDebouncer(),
                maxMessageBytes: Int = 64 << 20, logger: Logger = Logger(label: "swiftpilot.xds")) {
        self.store = store
        self.debouncer = debouncer
        self.logger = logger
        broadcaster = GenerationBroadcaster(initial: ConfigGeneration(snapshot: store.current))
        transport = .http2NIOPosix(
            address: .ipv4(host: host, port: port), transportSecurity: .plaintext,
            config: .defaults {
                $0.rpc.maxRequestPayloadSize = maxMessageBytes
                $0.http2.targetWindowSize = Self.receiveWindow
                $0.channelDebuggingCallbacks.onBindTCPListener = { channel in
                    channel.setOption(ChannelOptions.backlog, value: Self.listenBacklog)
                }
                $0.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    channel.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
                }
            })
        let streams = DiscoveryStreams(broadcaster: broadcaster, status: status, logger: logger)
        trimmer = HeapTrimmer(activity: streams.activity)
        server = GRPCServer(transport: transport, services: [
            AggregatedDiscoveryService(streams: streams),
            ClusterDiscoveryService(streams: streams),
            EndpointDiscoveryService(streams: streams),
            ListenerDiscoveryService(streams: streams),
            RouteDiscoveryService(streams: streams),
            ClientStatusService(status: status, broadcaster: broadcaster),
        ])
    }

    /// The listening socket's queue of connections not yet accepted, as Go servers (istiod) get it:
    /// the kernel caps it at `net.core.somaxconn` (4096 on current Linux). SwiftNIO's default is
    /// 128: when thousands of proxies connect at once (a restart), the connections beyond it are
    /// dropped and their clients retry on TCP's backoff (1, 3, 7, 15 … s after the first try).
    /// Set on the listener before it listens (`onBindTCPListener` runs in its initializer).
    public static let listenBacklog: Int32 = 65_535

    /// The HTTP/2 receive window: 256 KB instead of grpc-swift's server default of 64 KB. A
    /// state-of-the-world EDS ACK names every cluster (about 140 KB at 1,000 services); with 64 KB
    /// each such ACK stalled mid-message until a WINDOW_UPDATE came back. The window is also the
    /// backpressure: what a proxy may send that the server has not yet processed. With 8 MiB, a
    /// reconnect storm right after endpoint churn cost twice the server CPU (where it went was not
    /// traced); with 256 KB it did not. Measured in alternated runs at 1,000 SotW proxies on 1,000
    /// services (`Benchmarks/results/ab/window-ab.md`).
    static let receiveWindow = 256 << 10

    /// Reads into at most 2 KB per connection. Without a cap, a proxy's large requests (a SotW EDS
    /// request or ACK names every cluster) grow its pooled read buffer, and the HTTP/2 frame
    /// decoder's buffer that copies from it, to 64 KB each, which both keep for the life of the
    /// connection. Measured at 1,000 SotW proxies on 1,000 services: 4 KB reads cost about 5 KB more
    /// per proxy than 2 KB; 1 KB reads saved little more and cost cold-sync CPU. Set when a
    /// connection is accepted (`onAcceptTCPConnection`, the transport's one hook into each
    /// connection's channel).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 2048)

    /// The bound port, once listening.
    public func listeningPort() async throws -> Int {
        guard let ipv4 = try await transport.listeningAddress.ipv4 else { return 0 }
        return ipv4.port
    }

    /// Serves until cancelled.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.server.serve() }
            group.addTask { await self.trimmer.run() }
            group.addTask {
                await self.debouncer.run(changes: self.store.changes()) { snapshot in
                    self.logger.info("pushing snapshot", metadata: ["version": "\(snapshot.version)", "resources": "\(snapshot.resourceCount)"])
                    self.broadcaster.publish(ConfigGeneration(snapshot: snapshot, previous: self.broadcaster.latest))
                }
            }
            group.addTask {
                await waitUntilCancelled()
                self.server.beginGracefulShutdown()
            }
        }
    }
}
