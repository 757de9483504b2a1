import ServiceLifecycle

/// A long-running task as a service of the process's service group; cancelled on graceful shutdown.
struct ClosureService: Service {
    var name: String
    var body: @Sendable () async throws -> Void

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await body() }
        } catch where Task.isCancelled || isGracefulShutdown {
            // Shutting down: errors from cancelled transports are expected.
        }
    }

    private var isGracefulShutdown: Bool { Task.isShuttingDownGracefully }
}
