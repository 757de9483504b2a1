import Logging
import Snapshot
import Synchronization

/// Turns snapshot changes into generations: the first change after a quiet period is pushed at
/// once (leading edge); a burst is coalesced until it has been quiet for `quietWindow`, or
/// `maxDelay` after its first change, whichever comes first.
public struct PushDebouncer: Sendable {
    public var quietWindow: Duration
    public var maxDelay: Duration

    public init(quietWindow: Duration = .milliseconds(100), maxDelay: Duration = .seconds(10)) {
        self.quietWindow = quietWindow
        self.maxDelay = maxDelay
    }

    private final class Box: Sendable {
        let pending = Mutex(Pending())
    }

    private struct Pending {
        var snapshot: Snapshot?
        var firstChange: ContinuousClock.Instant = .now
        var lastChange: ContinuousClock.Instant = .now
    }

    /// Runs until `changes` ends, calling `publish` with each debounced snapshot.
    public func run(changes: AsyncStream<SnapshotStore.Change>, publish: @escaping @Sendable (Snapshot) -> Void) async {
        let clock = ContinuousClock()
        let box = Box()
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await change in changes {
                    let now = clock.now
                    box.pending.withLock { state in
                        if state.snapshot == nil { state.firstChange = now }
                        state.snapshot = change.snapshot
                        state.lastChange = now
                    }
                    wake.yield()
                }
                wake.finish()
            }
            group.addTask {
                var lastPush = clock.now - quietWindow - quietWindow
                for await _ in wakeups {
                    while true {
                        let now = clock.now
                        let (snapshot, deadline) = box.pending.withLock { state -> (Snapshot?, ContinuousClock.Instant) in
                            let leading = now - lastPush >= quietWindow && state.firstChange == state.lastChange
                            let deadline = leading ? now : min(state.lastChange + quietWindow, state.firstChange + maxDelay)
                            guard let snapshot = state.snapshot, deadline <= now else { return (nil, deadline) }
                            state.snapshot = nil
                            return (snapshot, deadline)
                        }
                        if let snapshot {
                            lastPush = now
                            publish(snapshot)
                            break
                        }
                        guard box.pending.withLock({ $0.snapshot != nil }) else { break }
                        try? await clock.sleep(until: deadline)
                    }
                }
            }
        }
    }
}
