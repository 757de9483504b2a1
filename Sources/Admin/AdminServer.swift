import Foundation
import Hummingbird
import Logging
import MCP
import Prometheus
import Snapshot
import XDS

/// The admin HTTP endpoints: readiness, Prometheus metrics, and JSON debug views.
///
/// | path | what |
/// |---|---|
/// | `/healthz/ready` | 200 once every source synced its required kinds (or a last-known-good snapshot was loaded), else 503 |
/// | `/metrics` | Prometheus text |
/// | `/debug/syncz` | per proxy and type: sent, ACKed, NACKed versions |
/// | `/debug/snapshotz` | current snapshot summary and the history of diffs |
/// | `/debug/mcpz` | sources, synced kinds, rejected resources, conflicts |
/// | `/debug/translationz` | config that could not be translated as written (resource, field, problem, fix) |
public struct AdminServer: Sendable {
    public var host: String
    public var port: Int
    let store: SnapshotStore
    let aggregator: ConfigAggregator
    let discovery: DiscoveryServer
    let prometheus: PrometheusCollectorRegistry
    let isReady: @Sendable () -> (ready: Bool, reason: String)
    let logger: Logger

    public init(host: String, port: Int, store: SnapshotStore, aggregator: ConfigAggregator, discovery: DiscoveryServer,
                prometheus: PrometheusCollectorRegistry, isReady: @escaping @Sendable () -> (ready: Bool, reason: String),
                logger: Logger = Logger(label: "swiftpilot.admin")) {
        self.host = host
        self.port = port
        self.store = store
        self.aggregator = aggregator
        self.discovery = discovery
        self.prometheus = prometheus
        self.isReady = isReady
        self.logger = logger
    }

    public func makeApplication() -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz/ready") { _, _ -> Response in
            let (ready, reason) = isReady()
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: reason + "\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: prometheus.emitToBuffer())))
        }
        router.get("/debug/syncz") { _, _ -> Response in
            try json(discovery.status.all)
        }
        router.get("/debug/snapshotz") { _, _ -> Response in
            try json(SnapshotSummary(store: store))
        }
        router.get("/debug/mcpz") { _, _ -> Response in
            try json(MCPSummary(aggregator: aggregator))
        }
        router.get("/debug/translationz") { _, _ -> Response in
            try json(discovery.broadcaster.latest.diagnostics.map {
                ["resource": "\($0.resource)", "field": $0.field, "problem": $0.problem, "fix": $0.fix]
            })
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "swiftpilot-admin"),
                           logger: logger)
    }

    func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

struct SnapshotSummary: Encodable {
    struct Collection: Encodable {
        var version: UInt64
        var resources: [String]
    }

    struct Change: Encodable {
        var version: UInt64
        var time: Date
        var changes: [String: [String: [String]]]
    }

    var version: UInt64
    var collections: [String: Collection]
    var history: [Change]

    init(store: SnapshotStore) {
        let snapshot = store.current
        version = snapshot.version
        collections = Dictionary(uniqueKeysWithValues: snapshot.collections.map { kind, collection in
            (kind.rawValue, Collection(version: collection.version, resources: collection.resources.keys.sorted()))
        })
        history = store.history.map { entry in
            Change(version: entry.version, time: entry.time, changes: Dictionary(uniqueKeysWithValues: entry.diff.changes.map { kind, change in
                (kind.rawValue, ["added": change.added.sorted(), "changed": change.changed.sorted(), "removed": change.removed.sorted()])
            }))
        }
    }
}

struct MCPSummary: Encodable {
    struct Source: Encodable {
        var id: String
        var syncedKinds: [String]
    }

    struct Rejection: Encodable {
        var source: String
        var error: String
        var resource: String?
        var field: String?
        var time: Date
    }

    struct Conflict: Encodable {
        var resource: String
        var servedFrom: String
        var ignoredFrom: String
    }

    var sources: [Source]
    var rejected: [Rejection]
    var conflicts: [Conflict]

    init(aggregator: ConfigAggregator) {
        sources = aggregator.sources.map { Source(id: $0, syncedKinds: aggregator.syncedKinds(source: $0).map(\.rawValue).sorted()) }
        rejected = aggregator.rejections.map {
            Rejection(source: $0.source, error: $0.error.description, resource: $0.error.resource, field: $0.error.field, time: $0.time)
        }
        conflicts = aggregator.conflicts.map { Conflict(resource: "\($0.key)", servedFrom: $0.winner, ignoredFrom: $0.loser) }
    }
}
