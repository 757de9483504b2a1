import Foundation
import Logging
import Metrics
import Snapshot
import Synchronization

/// Merges what several config sources deliver into one ``SnapshotStore``.
///
/// Each source reports, per kind, its complete current set (state of the world) or a patch. The
/// merged collection is the union over sources in configuration order: on a duplicate
/// `kind/namespace/name` the first source wins and the conflict is recorded.
public final class ConfigAggregator: Sendable {
    /// A resource two sources both deliver; `winner` is the one served.
    public struct Conflict: Sendable, Equatable {
        public var key: ConfigKey
        public var winner: String
        public var loser: String
    }

    /// A resource a source delivered that was refused, and why.
    public struct Rejection: Sendable {
        public var source: String
        public var error: ConfigDecodingError
        public var time: Date
    }

    private struct State {
        var perSource: [String: [ConfigKind: [String: ConfigResource]]] = [:]
        var synced: [String: Set<ConfigKind>] = [:]
        var conflicts: [Conflict] = []
        /// Per source, per scope (a kind's validation, a type URL's decoding, a directory load).
        var rejections: [String: [String: [Rejection]]] = [:]
        var versions: [String: [ConfigKind: String]] = [:]
        /// Per kind, the source whose collection the store holds as it is (the only source
        /// delivering the kind, nothing filled in): that source's patches patch the store.
        var mirrored: [ConfigKind: String] = [:]
    }

    public let store: SnapshotStore
    /// Source ids in configuration order (earlier wins).
    public let sources: [String]
    private let state = Mutex(State())
    private let logger: Logger

    /// Content served for a kind until every source has delivered it (the last-known-good snapshot).
    public let fallback: Snapshot?

    public init(store: SnapshotStore, sources: [String], fallback: Snapshot? = nil, logger: Logger = Logger(label: "swiftpilot.mcp")) {
        self.store = store
        self.sources = sources
        self.fallback = fallback
        self.logger = logger
    }

    /// Applies a source's new complete set for `kind` and marks the kind synced for that source.
    /// Resources that fail Istio's validation are dropped and recorded; the rest applies.
    @discardableResult
    public func replace(source: String, kind: ConfigKind, with delivered: [ConfigResource]) -> SnapshotDiff {
        // What this source delivered before and passed validation is not validated again.
        let accepted = state.withLock { $0.perSource[source]?[kind] ?? [:] }
        var unchanged: [ConfigResource] = []
        var changed: [ConfigResource] = []
        for resource in delivered {
            if let before = accepted[resource.key.resourceName], before.hasSameContent(as: resource) {
                unchanged.append(resource)
            } else {
                changed.append(resource)
            }
        }
        var (resources, problems) = ConfigValidator.partition(changed)
        resources += unchanged
        recordRejections(source: source, scope: "validate:\(kind)", problems)
        return update(source: source, kinds: [kind]) { collections in
            var map: [String: ConfigResource] = [:]
            map.reserveCapacity(resources.count)
            for resource in resources { map[resource.key.resourceName] = resource }
            collections[kind] = map
        }
    }

    /// Applies a source's incremental change for `kind` (invalid upserts are dropped and recorded).
    @discardableResult
    public func patch(source: String, kind: ConfigKind, upsert delivered: [ConfigResource], remove: [String]) -> SnapshotDiff {
        let (upsert, problems) = ConfigValidator.partition(delivered)
        let rejectedNames = Set(delivered.map(\.key.resourceName)).subtracting(upsert.map(\.key.resourceName))
        // Earlier rejections of the resources this patch touches are superseded.
        let touched = Set(delivered.map { "\($0.key)" } + remove.map { "\(kind) \($0)" })
        state.withLock { state in
            var list = state.rejections[source]?["validate:\(kind)"] ?? []
            list.removeAll { touched.contains($0.error.resource ?? "") }
            list += problems.map { Rejection(source: source, error: $0, time: Date()) }
            state.rejections[source, default: [:]]["validate:\(kind)"] = list
        }
        for problem in problems { logger.warning("rejected config", metadata: ["source": "\(source)", "error": "\(problem)"]) }
        Self.countRejections(problems, source: source)
        let removals = remove + rejectedNames
        return update(source: source, kinds: [kind], patch: .patch(upsert: upsert, remove: removals)) { collections in
            // In place: the source's collection of the kind is not copied.
            for resource in upsert { collections[kind, default: [:]][resource.key.resourceName] = resource }
            for name in removals { collections[kind]?.removeValue(forKey: name) }
        }
    }

    /// Records what a source delivered that was refused, replacing the earlier list of the same scope
    /// (e.g. `decode:<type URL>`), so a fixed resource leaves the list.
    public func recordRejections(source: String, scope: String, _ errors: [ConfigDecodingError]) {
        for error in errors { logger.warning("rejected config", metadata: ["source": "\(source)", "error": "\(error)"]) }
        Self.countRejections(errors, source: source)
        state.withLock { state in
            state.rejections[source, default: [:]][scope] = errors.map { Rejection(source: source, error: $0, time: Date()) }
        }
    }

    /// `swiftpilot_config_rejections_total{source, kind}`: resources refused (undecodable or invalid).
    static func countRejections(_ errors: [ConfigDecodingError], source: String) {
        for error in errors {
            let kind = error.resource?.split(separator: " ").first.map(String.init) ?? "unknown"
            Counter(label: "swiftpilot_config_rejections_total", dimensions: [("source", source), ("kind", kind)]).increment()
        }
    }

    /// Records the version a source last delivered for a kind (what an MCP NACK reports as applied).
    public func markReceived(source: String, version: String, kind: ConfigKind) {
        state.withLock { $0.versions[source, default: [:]][kind] = version }
    }

    /// Marks a kind answered by a source without changing its content (e.g. after a NACKed response).
    public func markSynced(source: String, kind: ConfigKind) {
        state.withLock { _ = $0.synced[source, default: []].insert(kind) }
    }

    public func lastVersion(source: String, kind: ConfigKind) -> String? {
        state.withLock { $0.versions[source]?[kind] }
    }

    public var conflicts: [Conflict] { state.withLock { $0.conflicts } }
    public var rejections: [Rejection] {
        state.withLock { $0.rejections.values.flatMap { $0.values.flatMap { $0 } } }.sorted { $0.error.description < $1.error.description }
    }

    /// The kinds each source has delivered at least once.
    public func syncedKinds(source: String) -> Set<ConfigKind> { state.withLock { $0.synced[source] ?? [] } }

    /// - Parameter patch: the change to the one kind of `kinds` as a patch, when it is one: the store
    ///   is patched with it when it holds this source's collection as it is.
    private func update(source: String, kinds: Set<ConfigKind>, patch: SnapshotUpdate.Change? = nil,
                        _ body: (inout [ConfigKind: [String: ConfigResource]]) -> Void) -> SnapshotDiff {
        let (update, conflicts) = state.withLock { state -> (SnapshotUpdate, [Conflict]) in
            body(&state.perSource[source, default: [:]])
            state.synced[source, default: []].formUnion(kinds)
            var update = SnapshotUpdate()
            var found: [Conflict] = []
            state.conflicts.removeAll { kinds.contains($0.key.kind) }
            for kind in kinds {
                let delivering = orderedSources(state).filter { state.perSource[$0]?[kind]?.isEmpty == false }
                let complete = fallback == nil || sources.allSatisfy { state.synced[$0]?.contains(kind) == true }
                if delivering.count <= 1, complete {
                    // One source has this kind: its content is the merge (no copy, nothing to resolve).
                    let only = delivering.first ?? source
                    if let patch, kinds.count == 1, only == source, state.mirrored[kind] == source {
                        update.changes[kind] = patch
                    } else {
                        update.changes[kind] = .replaceByName(state.perSource[only]?[kind] ?? [:])
                    }
                    state.mirrored[kind] = only
                    continue
                }
                state.mirrored[kind] = nil
                var merged: [String: ConfigResource] = [:]
                for id in orderedSources(state) {
                    for (name, resource) in state.perSource[id]?[kind] ?? [:] {
                        if let existing = merged[name] {
                            found.append(Conflict(key: resource.key, winner: existing.origin, loser: id))
                        } else {
                            merged[name] = resource
                        }
                    }
                }
                // Until every source has delivered this kind, the last-known-good content fills in.
                if let fallback, !sources.allSatisfy({ state.synced[$0]?.contains(kind) == true }) {
                    for (name, resource) in fallback[kind].resources where merged[name] == nil { merged[name] = resource }
                }
                update.changes[kind] = .replace(Array(merged.values))
            }
            state.conflicts.append(contentsOf: found)
            return (update, found)
        }
        for conflict in conflicts {
            logger.warning("duplicate resource across sources; the first configured source wins",
                           metadata: ["resource": "\(conflict.key)", "winner": "\(conflict.winner)", "ignored": "\(conflict.loser)"])
        }
        return store.apply(update)
    }

    private func orderedSources(_ state: State) -> [String] {
        sources + state.perSource.keys.filter { !sources.contains($0) }.sorted()
    }
}
