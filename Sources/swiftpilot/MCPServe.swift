import ArgumentParser
import Logging
import MCP
import ServiceLifecycle

/// `swiftpilot mcp-serve`: serve a watched YAML directory to MCP sinks.
struct MCPServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-serve",
        abstract: "Serve a directory of Istio YAML over MCP-over-xDS (a reusable MCP source).")

    @Option(help: "Directory of Istio YAML to serve (watched).")
    var dir: String

    @Option(help: "Listen address.")
    var listen: String = "127.0.0.1:15051"

    @OptionGroup var log: LogOptions

    func run() async throws {
        log.bootstrap()
        let address = try ListenAddress(parsing: listen, flag: "--listen")
        let source = MCPSource()
        let directory = ConfigDirectory(path: dir)
        source.load(directory)
        let service = ClosureService(name: "mcp-source") {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await source.follow(directory) }
                group.addTask { try await source.serve(host: address.host, port: address.port) }
            }
        }
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: Logger(label: "swiftpilot")))
        try await group.run()
    }
}
