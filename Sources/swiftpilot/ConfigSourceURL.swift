import Foundation
import MCP

/// A `--config-source` URL: `xds://host:port`, `mcp://host:port` or `fs:///path`.
enum ConfigSourceURL: Equatable, CustomStringConvertible {
    case xds(SourceConnection, text: String)
    case mcp(SourceConnection, text: String)
    case fs(path: String)

    struct ParseError: Error, CustomStringConvertible {
        var text: String
        var reason: String
        var description: String {
            "--config-source '\(text)': \(reason) (expected xds://host:port, mcp://host:port or fs:///absolute/dir)"
        }
    }

    init(parsing text: String) throws {
        guard let schemeEnd = text.range(of: "://") else { throw ParseError(text: text, reason: "no scheme") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = String(text[schemeEnd.upperBound...])
        switch scheme {
        case "fs":
            guard !rest.isEmpty else { throw ParseError(text: text, reason: "no directory") }
            self = .fs(path: rest)
        case "xds", "mcp":
            let (beforeQuery, query) = rest.firstIndex(of: "?").map { (String(rest[..<$0]), String(rest[rest.index(after: $0)...])) } ?? (rest, nil)
            let authority = beforeQuery.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            let connection: SourceConnection
            do {
                connection = try SourceConnection(url: text, authority: authority, query: query,
                                                  defaultKinds: SourceConnection.defaultKinds(legacy: scheme == "mcp"))
            } catch {
                throw ParseError(text: text, reason: error.reason)
            }
            self = scheme == "xds" ? .xds(connection, text: text) : .mcp(connection, text: text)
        default:
            throw ParseError(text: text, reason: "unsupported scheme '\(scheme)'")
        }
    }

    var description: String {
        switch self {
        case .xds(let connection, _): "xds://\(connection.host):\(connection.port)"
        case .mcp(let connection, _): "mcp://\(connection.host):\(connection.port)"
        case .fs(let path): "fs://\(path)"
        }
    }
}

/// `host:port` of a listen flag.
struct ListenAddress {
    var host: String
    var port: Int

    init(parsing text: String, flag: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigSourceURL.ParseError(text: text, reason: "\(flag) needs host:port")
        }
        host = String(text[..<colon])
        self.port = port
    }
}
