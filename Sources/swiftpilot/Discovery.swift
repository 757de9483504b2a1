import Admin
import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MCP
import Metrics
import Prometheus
import ServiceLifecycle
import Snapshot
import XDS

/// `swiftpilot discovery`: pull Istio config from MCP sources, serve it to proxies over ADS.
struct Discovery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the control plane (the default subcommand).",
        discussion: """
        Without --config-source, SwiftPilot runs its embedded default: an in-process MCP source \
        serving the Istio YAML in --examples-dir over loopback MCP-over-xDS, pulled by SwiftPilot's own sink.
        """)

    @Option(name: .customLong("config-source"), help: ArgumentHelp(
        "Where Istio config comes from (repeatable; the first wins on duplicates): xds://host:port (MCP-over-xDS), mcp://host:port (legacy istio.mcp.v1alpha1), fs:///dir (watched YAML). Options as a query: ?kinds=…&required=…&versions=v1,v1alpha3&ca=…&cert=…&key=…&sni=…&max-message-bytes=….",
        valueName: "url"))
    var configSources: [String] = []

    @Option(help: "Directory the embedded default MCP source serves when no --config-source is given.")
    var examplesDir: String = "examples"

    @Option(help: "ADS (xDS) listen address.")
    var xdsListen: String = "127.0.0.1:15010"

    @Option(help: "Admin HTTP listen address (/healthz/ready, /metrics, /debug/*).")
    var adminListen: String = "127.0.0.1:15014"

    @Option(help: "Only accept MCP resources whose istio.io/rev label is absent or equal to this.")
    var revision: String?

    @Option(help: "Also listen here for legacy MCP sources that dial in (istio.mcp.v1alpha1.ResourceSink), e.g. 127.0.0.1:15020.")
    var mcpSinkListen: String?

    @Option(help: "Directory for the last-known-good snapshot: loaded at start (served at once, even with every source down), rewritten after each change.")
    var snapshotDir: String?

    @Option(help: "Push debounce quiet window in milliseconds (a lone change is pushed at once).")
    var debounceMs: Int = 100

    @Option(help: "Push debounce maximum delay in milliseconds.")
    var debounceMaxMs: Int = 10_000

    @OptionGroup var log: LogOptions

    func validate() throws {
        for source in configSources { _ = try ConfigSourceURL(parsing: source) }
        _ = try ListenAddress(parsing: xdsListen, flag: "--xds-listen")
        _ = try ListenAddress(parsing: adminListen, flag: "--admin-listen")
    }

    func run() async throws {
        HeapTrimmer.limitArenas(environment: ProcessInfo.processInfo.environment, cores: ProcessInfo.processInfo.activeProcessorCount)
        log.bootstrap()
        let logger = Logger(label: "swiftpilot")
        let prometheus = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))

        var sources = try configSources.map(ConfigSourceURL.init(parsing:))
        var services: [any Service] = []
        if sources.isEmpty {
            let directory = ConfigDirectory(path: examplesDir, origin: "embedded:\(examplesDir)")
            let embedded = MCPSource()
            embedded.load(directory)
            let (ports, portReady) = AsyncStream<Int>.makeStream()
            services.append(ClosureService(name: "embedded-mcp-source") {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { await embedded.follow(directory) }
                    group.addTask { try await embedded.serve(host: "127.0.0.1", port: 0) { portReady.yield($0) } }
                }
            })
            let group = ServiceGroup(configuration: .init(services: services, logger: logger))
            async let running: Void = group.run()
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ExitCode.failure }
            logger.info("embedded default: serving \(examplesDir) over MCP-over-xDS", metadata: ["port": "\(port)"])
            sources = [.xds(SourceConnection(host: "127.0.0.1", port: port), text: "xds://127.0.0.1:\(port)")]
            try await runControlPlane(sources: sources, prometheus: prometheus, logger: logger)
            await group.triggerGracefulShutdown()
            try await running
        } else {
            try await runControlPlane(sources: sources, prometheus: prometheus, logger: logger)
        }
    }

    func runControlPlane(sources: [ConfigSourceURL], prometheus: PrometheusCollectorRegistry, logger: Logger) async throws {
        var lastKnownGood: Snapshot?
        let snapshotFile = snapshotDir.map(SnapshotFile.init(directory:))
        if let snapshotFile {
            do {
                lastKnownGood = try snapshotFile.load()
                if let lastKnownGood {
                    logger.info("loaded last-known-good snapshot", metadata: ["path": "\(snapshotFile.path)", "version": "\(lastKnownGood.version)", "resources": "\(lastKnownGood.resourceCount)"])
                }
            } catch {
                logger.error("\(error)")
            }
        }
        let store = SnapshotStore(initial: lastKnownGood ?? .empty)
        let ids = sources.map(\.description)
        let aggregator = ConfigAggregator(store: store, sources: ids, fallback: lastKnownGood)
        var services: [any Service] = []
        if let snapshotFile {
            services.append(ClosureService(name: "snapshot-file") {
                await snapshotFile.persist(store) { error in logger.error("cannot write the last-known-good snapshot", metadata: ["error": "\(error)"]) }
            })
        }
        var required: [String: Set<ConfigKind>] = [:]
        for source in sources {
            let id = source.description
            switch source {
            case .xds(let connection, _):
                let sink = XDSConfigSink(id: id, connection: connection, aggregator: aggregator, revision: revision)
                required[id] = connection.requiredKinds
                services.append(ClosureService(name: id) { await sink.run() })
            case .fs(let path):
                let directory = ConfigDirectory(path: path, origin: id)
                required[id] = Set(ConfigKind.allCases)
                services.append(ClosureService(name: id) {
                    for await contents in directory.watch() {
                        aggregator.recordRejections(source: id, scope: "files", contents.errors)
                        for (kind, resources) in contents.byKind { aggregator.replace(source: id, kind: kind, with: resources) }
                        logger.info("loaded config directory", metadata: ["source": "\(id)", "resources": "\(contents.resources.count)", "rejected": "\(contents.errors.count)"])
                    }
                })
            case .mcp(let connection, _):
                let session = LegacySinkSession(id: id, kinds: connection.kinds, resume: connection.resume, aggregator: aggregator)
                required[id] = connection.requiredKinds
                services.append(ClosureService(name: id) { await LegacyMCPSink(session: session, connection: connection).run() })
            }
        }
        if let mcpSinkListen {
            let address = try ListenAddress(parsing: mcpSinkListen, flag: "--mcp-sink-listen")
            let server = GRPCServer(
                transport: HTTP2ServerTransport.Posix(address: .ipv4(host: address.host, port: address.port), transportSecurity: .plaintext,
                                                      config: .defaults { $0.rpc.maxRequestPayloadSize = 256 << 20 }),
                services: [LegacyMCPSinkService(aggregator: aggregator)])
            services.append(ClosureService(name: "mcp-sink-listener") {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await server.serve() }
                    group.addTask {
                        await waitUntilCancelled()
                        server.beginGracefulShutdown()
                    }
                }
            })
            logger.info("listening for MCP sources that dial in (istio.mcp.v1alpha1.ResourceSink)", metadata: ["address": "\(mcpSinkListen)"])
        }
        let xds = try ListenAddress(parsing: xdsListen, flag: "--xds-listen")
        let debouncer = PushDebouncer(quietWindow: .milliseconds(debounceMs), maxDelay: .milliseconds(debounceMaxMs))
        let discovery = DiscoveryServer(store: store, host: xds.host, port: xds.port, debouncer: debouncer)
        services.append(ClosureService(name: "ads") { try await discovery.run() })
        let admin = try ListenAddress(parsing: adminListen, flag: "--admin-listen")
        let requiredKinds = required
        let loaded = lastKnownGood
        let adminServer = AdminServer(host: admin.host, port: admin.port, store: store, aggregator: aggregator, discovery: discovery,
                                      prometheus: prometheus) {
            let missing = requiredKinds.compactMap { id, kinds -> String? in
                let lacking = kinds.subtracting(aggregator.syncedKinds(source: id))
                return lacking.isEmpty ? nil : "\(id) has not delivered \(lacking.map(\.rawValue).sorted().joined(separator: ", "))"
            }
            if !missing.isEmpty, let loaded {
                return (true, "ready: serving the last-known-good snapshot v\(loaded.version) while \(missing.sorted().joined(separator: "; "))")
            }
            guard missing.isEmpty else { return (false, "not ready: " + missing.sorted().joined(separator: "; ")) }
            let (synced, served) = (store.current.version, discovery.broadcaster.latest.snapshotVersion)
            guard served == synced else { return (false, "not ready: snapshot v\(synced) not yet pushed (serving v\(served))") }
            return (true, "ready: serving snapshot v\(served)")
        }
        services.append(adminServer.makeApplication())
        logger.info("SwiftPilot starting", metadata: ["xds": "\(xdsListen)", "admin": "\(adminListen)", "sources": "\(ids.joined(separator: ","))"])
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
