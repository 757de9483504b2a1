import Synchronization

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

/// Serves one server stream with the task that runs it and no other task while the stream idles:
/// `onRequest` runs for each of the peer's requests, in order, on the calling task; `onWake` runs for
/// the wake-ups of `wakeups` on a task that exists only while it pushes. The two never overlap (a
/// request waits for a push in progress; a wake-up during a request is served right after it), so
/// they may share state and the response writer without locks. Wake-ups coalesce: a stream busy
/// through several publishes pushes once, with the newest config.
///
/// Returns when the peer's requests end, after any push in progress; throws the first error of the
/// requests, `onRequest` or `onWake`.
public func serveStream<Requests: AsyncSequence>(
    _ requests: Requests, wakeups: Wakeups,
    onRequest: (Requests.Element) async throws -> Void,
    onWake: @escaping @Sendable () async throws -> Void
) async throws {
    let turn = StreamTurn(onWake: onWake)
    let id = wakeups.add(turn.waker)
    defer { wakeups.remove(id) }
    var iterator = requests.makeAsyncIterator()
    while true {
        let request: Requests.Element?
        do {
            request = try await iterator.next()
        } catch {
            _ = await turn.close()
            throw error
        }
        guard let request else { break }
        await turn.acquire()
        do {
            try await onRequest(request)
            try await turn.release()
        } catch {
            turn.abandon()
            throw error
        }
    }
    if let failure = await turn.close() { throw failure }
}

/// Who may touch a stream's state and writer: the request task or one push task, never both.
final class StreamTurn: Sendable {
    private enum AfterPush {
        case pushAgain
        case handOver(CheckedContinuation<Void, Never>)
        case done
    }

    private struct State {
        /// A request or a push holds the turn.
        var busy = false
        /// A wake-up arrived while the turn was held.
        var wakePending = false
        /// The request task, waiting for the push in progress to hand the turn over.
        var waiter: CheckedContinuation<Void, Never>?
        /// The stream is over: no more pushes start.
        var closed = false
        /// The first error of a push.
        var failure: (any Error)?
    }

    private let state = Mutex(State())
    private let onWake: @Sendable () async throws -> Void
    let waker: Wakeups.Waker

    init(onWake: @escaping @Sendable () async throws -> Void) {
        self.onWake = onWake
        // The turn owns the waker; the waker only reaches back while the stream is registered.
        let box = WeakTurn()
        self.waker = Wakeups.Waker { box.turn?.wake() }
        box.turn = self
    }

    private final class WeakTurn: @unchecked Sendable {
        weak var turn: StreamTurn?
    }

    /// A publish: pushes now on a new task, or after the request or push in progress.
    func wake() {
        let start = state.withLock { state in
            guard !state.closed, state.failure == nil else { return false }
            if state.busy {
                state.wakePending = true
                return false
            }
            state.busy = true
            return true
        }
        if start { Task { await self.pushes() } }
    }

    private func pushes() async {
        while true {
            do {
                try await push()
            } catch {
                state.withLock { if $0.failure == nil { $0.failure = error } }
            }
            let next: AfterPush = state.withLock { state in
                if state.wakePending, !state.closed, state.failure == nil {
                    state.wakePending = false
                    return .pushAgain
                }
                state.wakePending = false
                if let waiter = state.waiter {
                    state.waiter = nil
                    return .handOver(waiter)  // still busy: the turn passes to the waiter
                }
                state.busy = false
                return .done
            }
            switch next {
            case .pushAgain: continue
            case .handOver(let waiter): waiter.resume(); return
            case .done: return
            }
        }
    }

    private func push() async throws {
        // Taken: a publish from here on wakes the stream again.
        waker.pending.store(false, ordering: .releasing)
        try await onWake()
    }

    /// The request task takes the turn, after the push in progress if there is one.
    func acquire() async {
        await takeTurn()
    }

    /// Waits until no push holds the turn, then holds it: taken when free, or handed over by the
    /// push that held it.
    private func takeTurn() async {
        let taken = state.withLock { state in
            if state.busy { return false }
            state.busy = true
            return true
        }
        if taken { return }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.busy {
                    state.waiter = continuation
                    return false
                }
                state.busy = true
                return true
            }
            if now { continuation.resume() }
        }
    }

    /// The request task gives the turn back, first serving the wake-ups that arrived meanwhile.
    func release() async throws {
        while true {
            let pending = state.withLock { state in
                if state.wakePending, !state.closed {
                    state.wakePending = false
                    return true
                }
                state.busy = false
                return false
            }
            guard pending else { return }
            try await push()
        }
    }

    /// The request task, holding the turn, ends the stream after an error.
    func abandon() {
        state.withLock { state in
            state.closed = true
            state.busy = false
        }
    }

    /// The request task, not holding the turn, ends the stream: waits for the push in progress and
    /// returns the first error of the pushes.
    func close() async -> (any Error)? {
        state.withLock { $0.closed = true }
        await takeTurn()
        return state.withLock { state in
            state.busy = false
            return state.failure
        }
    }
}
