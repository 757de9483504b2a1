import ArgumentParser
import Foundation
import Logging

@main
struct SwiftPilot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftpilot",
        abstract: "An Istio-Pilot-style control plane: Istio config over MCP in, xDS for Envoy and gRPC out.",
        subcommands: [Discovery.self, MCPServe.self, ProxyStatus.self],
        defaultSubcommand: Discovery.self)
}

/// Log options shared by the long-running subcommands.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap() {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
