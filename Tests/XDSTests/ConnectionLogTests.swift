import Foundation
import Logging
import Mesh
import Snapshot
import Synchronization
import Testing
@testable import XDS

/// Log lines about a connection name it, though connections keep no logger of their own.
@Suite struct ConnectionLogTests {
    final class Lines: Sendable {
        let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
    }

    struct Capture: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            lines.lines.withLock { $0.append((level, message.description, metadata ?? [:])) }
        }
    }

    @Test func linesNameTheConnectionAndKeepTheirOwnMetadata() throws {
        let lines = Lines()
        let registry = SyncStatusRegistry()
        let streams = DiscoveryStreams(broadcaster: GenerationBroadcaster(initial: ConfigGeneration(snapshot: .empty)), status: registry,
                                       logger: Logger(label: "test") { _ in Capture(lines: lines) })
        let proxy = Proxy(kind: .router, id: "gw", namespace: "edge")
        let connection = streams.open(proxy, nodeID: "router~1.2.3.4~gw.edge~edge.svc.cluster.local", transport: "delta",
                                      virtualHostDiscovery: true, aggregated: true)
        #expect(connection.proxy.namespace == "edge", "the connection reads its proxy from the registry entry")
        #expect(registry.all.map(\.connectionID) == [connection.id])

        streams.log(.warning, "proxy rejected config", connection: connection, metadata: ["type": "CDS"])
        var built = false
        streams.log(.debug, "sent", connection: connection, metadata: { built = true; return ["type": "EDS"] }())
        streams.close(connection)

        let logged = lines.lines.withLock { $0 }
        #expect(logged.map(\.message) == ["proxy connected", "proxy rejected config", "proxy disconnected"])
        for line in logged { #expect(line.metadata["proxy"] == "\(connection.id)", "\(line.message)") }
        #expect(logged[0].metadata["transport"] == "delta")
        #expect(logged[1].metadata["type"] == "CDS")
        #expect(!built, "metadata of a disabled level is never built")
        #expect(registry.count == 0)
    }
}
