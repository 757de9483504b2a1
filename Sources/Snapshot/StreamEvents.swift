/// One input of a server stream loop: a request from the peer, a wake-up (new config), or the
/// end of the peer's requests.
public enum StreamEvent<Request: Sendable>: Sendable {
    case request(Request)
    case wake
    case closed
}

/// Runs `body` over one sequence merging a peer's requests and wake-ups, so a stream handler is a
/// single loop: the requests and the wake-ups are read by child tasks that end with `body`.
public func withStreamEvents<Requests: AsyncSequence & Sendable>(
    _ requests: Requests, wakeups: AsyncStream<Void>,
    body: (AsyncStream<StreamEvent<Requests.Element>>) async throws -> Void
) async throws where Requests.Element: Sendable {
    let (events, input) = AsyncStream<StreamEvent<Requests.Element>>.makeStream()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { input.yield(.closed) }
            for try await next in requests { input.yield(.request(next)) }
        }
        group.addTask {
            for await _ in wakeups { input.yield(.wake) }
        }
        defer { group.cancelAll() }
        try await body(events)
    }
}
