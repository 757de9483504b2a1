import Foundation
import Synchronization

/// Holds the current snapshot, a bounded history of diffs, and tells subscribers of each change.
public final class SnapshotStore: Sendable {
    /// One entry of the history: the snapshot version reached, when, and the diff that led to it.
    public struct HistoryEntry: Sendable {
        public var version: UInt64
        public var time: Date
        public var diff: SnapshotDiff
    }

    /// A published change: the new snapshot and the diff from the previous one.
    public struct Change: Sendable {
        public var snapshot: Snapshot
        public var diff: SnapshotDiff
    }

    private struct State {
        var current: Snapshot
        var history: [HistoryEntry] = []
        var subscribers: [UInt64: AsyncStream<Change>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let state: Mutex<State>
    public let historyLimit: Int

    public init(initial: Snapshot = .empty, historyLimit: Int = 32) {
        self.state = Mutex(State(current: initial))
        self.historyLimit = historyLimit
    }

    public var current: Snapshot { state.withLock { $0.current } }
    public var history: [HistoryEntry] { state.withLock { $0.history } }

    /// Applies an update; returns the diff (empty when nothing changed in content).
    @discardableResult
    public func apply(_ update: SnapshotUpdate) -> SnapshotDiff {
        state.withLock { state in
            let (next, diff) = state.current.applying(update)
            guard !diff.isEmpty else { return diff }
            state.current = next
            state.history.append(HistoryEntry(version: next.version, time: Date(), diff: diff))
            if state.history.count > historyLimit { state.history.removeFirst(state.history.count - historyLimit) }
            for continuation in state.subscribers.values { continuation.yield(Change(snapshot: next, diff: diff)) }
            return diff
        }
    }

    /// Changes from now on. The first element is the current snapshot with a diff from empty.
    public func changes() -> AsyncStream<Change> {
        let (stream, continuation) = AsyncStream<Change>.makeStream(bufferingPolicy: .unbounded)
        let id = state.withLock { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = continuation
            continuation.yield(Change(snapshot: state.current, diff: state.current.diff(from: .empty)))
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }
}
