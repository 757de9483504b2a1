import Foundation

/// A `--config-source` URL: `xds://host:port`, `mcp://host:port` or `fs:///path`.
enum ConfigSourceURL: Equatable, CustomStringConvertible {
    case xds(host: String, port: Int)
    case mcp(host: String, port: Int)
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
            let authority = rest.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
                  (1...65535).contains(port) else {
                throw ParseError(text: text, reason: "needs host:port")
            }
            let host = String(authority[..<colon])
            self = scheme == "xds" ? .xds(host: host, port: port) : .mcp(host: host, port: port)
        default:
            throw ParseError(text: text, reason: "unsupported scheme '\(scheme)'")
        }
    }

    var description: String {
        switch self {
        case .xds(let host, let port): "xds://\(host):\(port)"
        case .mcp(let host, let port): "mcp://\(host):\(port)"
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
