import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XDS

/// `swiftpilot proxy-status`: a table of every proxy's sync state, like `istioctl proxy-status`.
struct ProxyStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-status",
        abstract: "Show each connected proxy's sync state per type (SYNCED, STALE, NACKED, NOT SENT).")

    @Option(help: "SwiftPilot admin address.")
    var admin: String = "127.0.0.1:15014"

    func run() async throws {
        guard let url = URL(string: "http://\(admin)/debug/syncz") else { throw ValidationError("bad --admin '\(admin)'") }
        let data: Data
        do {
            let (body, response) = try await URLSession.shared.data(from: url)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                throw AdminError(message: "SwiftPilot admin at \(url) answered \((response as? HTTPURLResponse)?.statusCode ?? 0)")
            }
            data = body
        } catch let error as AdminError {
            throw error
        } catch {
            throw AdminError(message: "cannot reach SwiftPilot admin at \(url): \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let proxies = try decoder.decode([ProxySyncStatus].self, from: data)
        print(Self.table(proxies))
    }

    static func table(_ proxies: [ProxySyncStatus]) -> String {
        var rows = [["NAME", "KIND", "NAMESPACE", "CDS", "EDS", "LDS", "RDS", "SNAPSHOT"]]
        for proxy in proxies {
            let states = [XDSType.cluster, .endpoint, .listener, .route].map { type -> String in
                guard let status = proxy.types[type] else { return "NOT SENT" }
                return status.state
            }
            rows.append([proxy.nodeID, proxy.proxyKind, proxy.namespace] + states + [proxy.snapshotVersion.map { "v\($0)" } ?? "-"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        for proxy in proxies {
            for (type, status) in proxy.types.entries {
                guard let nack = status.nack else { continue }
                let sources = status.nackSources.map { $0.isEmpty ? "" : " (from \($0.joined(separator: ", ")))" } ?? ""
                lines.append("\(proxy.nodeID) \(type.shortName) NACKED\(sources): \(nack)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A runtime failure talking to the admin server (not a usage error: no usage text is printed).
struct AdminError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
