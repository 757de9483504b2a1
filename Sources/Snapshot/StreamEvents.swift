import Synchronization

/// One input of a server stream loop: a request from the peer, a wake-up (new config), or the
/// end of the peer's requests.
public enum StreamEvent<Request: Sendable>: Sendable {
    case request(Request)
    case wake
    case closed
}

/// The streams to wake when new config is published. Each stream has at most one wake-up pending:
/// a stream that is behind reads the newest config once, not every version it missed.
public final class Wakeups: Sendable {
    final class Waker: Sendable {
        let pending = Atomic<Bool>(false)
        let deliver: @Sendable () -> Void

        init(deliver: @escaping @Sendable () -> Void) { self.deliver = deliver }

        func wake() {
            if !pending.exchange(true, ordering: .acquiringAndReleasing) { deliver() }
        }
    }

    private struct State {
        var wakers: [UInt64: Waker] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes every subscribed stream.
    public func wakeAll() {
        state.withLock { state in
            for waker in state.wakers.values { waker.wake() }
        }
    }

    func add(_ waker: Waker) -> UInt64 {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.wakers[id] = waker
            return id
        }
    }

    func remove(_ id: UInt64) {
        _ = state.withLock { $0.wakers.removeValue(forKey: id) }
    }
}

/// A peer's requests and the stream's wake-ups as one sequence. A wake-up is delivered straight
/// into it by the publisher (no task per stream forwards them).
public struct StreamEvents<Request: Sendable>: AsyncSequence, Sendable {
    let events: AsyncStream<StreamEvent<Request>>
    let waker: Wakeups.Waker

    public struct AsyncIterator: AsyncIteratorProtocol {
        var events: AsyncStream<StreamEvent<Request>>.AsyncIterator
        let waker: Wakeups.Waker

        public mutating func next() async -> StreamEvent<Request>? {
            let event = await events.next()
            // Taken: the next publish wakes the stream again.
            if case .wake = event { waker.pending.store(false, ordering: .releasing) }
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(events: events.makeAsyncIterator(), waker: waker) }
}

/// Runs `body` over one sequence merging a peer's requests and the wake-ups of `wakeups`, so a
/// stream handler is a single loop. The requests are read by a child task that ends with `body`.
public func withStreamEvents<Requests: AsyncSequence & Sendable>(
    _ requests: Requests, wakeups: Wakeups,
    body: (StreamEvents<Requests.Element>) async throws -> Void
) async throws where Requests.Element: Sendable {
    let (events, input) = AsyncStream<StreamEvent<Requests.Element>>.makeStream()
    let waker = Wakeups.Waker { input.yield(.wake) }
    let id = wakeups.add(waker)
    defer { wakeups.remove(id) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { input.yield(.closed) }
            for try await next in requests { input.yield(.request(next)) }
        }
        defer { group.cancelAll() }
        try await body(StreamEvents(events: events, waker: waker))
    }
}
