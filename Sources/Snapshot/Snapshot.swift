import Foundation
import Synchronization

/// An immutable, versioned view of every config collection.
///
/// `applying(_:)` yields the next snapshot and the diff between the two; a change that alters no
/// content yields the same snapshot (same version) and an empty diff.
public struct Snapshot: Sendable {
    /// All resources of one kind, by `namespace/name`.
    public struct Collection: Sendable, Equatable {
        /// Bumped each time this collection's content changes (0 = never set).
        public var version: UInt64 = 0
        public var resources: [String: ConfigResource] = [:]
        /// Identifies this content within the process (0 = unknown): two collections with the same
        /// non-zero revision hold the same resources, so what was derived from one holds for the
        /// other. Set by ``Snapshot/applying(_:)``, unique across every snapshot and store.
        public private(set) var revision: UInt64 = 0

        public init(version: UInt64 = 0, resources: [String: ConfigResource] = [:]) {
            self.version = version
            self.resources = resources
        }

        /// Same version and resources (the revision is an identity, not content).
        public static func == (a: Collection, b: Collection) -> Bool {
            a.version == b.version && a.resources == b.resources
        }

        private static let revisions = Atomic<UInt64>(0)
        mutating func assignRevision() { revision = Self.revisions.add(1, ordering: .relaxed).newValue }
    }

    /// Global version, monotonic across every change.
    public let version: UInt64
    public let collections: [ConfigKind: Collection]

    public init(version: UInt64 = 0, collections: [ConfigKind: Collection] = [:]) {
        self.version = version
        self.collections = collections
    }

    public static let empty = Snapshot()

    public subscript(kind: ConfigKind) -> Collection { collections[kind] ?? Collection() }

    /// The resources of a kind, sorted by namespace and name.
    public func resources(_ kind: ConfigKind) -> [ConfigResource] {
        let all = Array(self[kind].resources.values)
        // Positions are sorted, not the (large) resources; one kind: namespace, then name.
        let order = all.indices.sorted { a, b in
            all[a].key.namespace != all[b].key.namespace ? all[a].key.namespace < all[b].key.namespace : all[a].key.name < all[b].key.name
        }
        return order.map { all[$0] }
    }

    public func resource(_ key: ConfigKey) -> ConfigResource? {
        self[key.kind].resources[key.resourceName]
    }

    public var resourceCount: Int { collections.values.reduce(0) { $0 + $1.resources.count } }

    /// Applies an update. Returns the next snapshot and what changed; when nothing changed in
    /// content the snapshot is returned unchanged (same version) with an empty diff.
    public func applying(_ update: SnapshotUpdate) -> (snapshot: Snapshot, diff: SnapshotDiff) {
        var next = collections
        var changes: [ConfigKind: SnapshotDiff.Changes] = [:]
        for (kind, change) in update.changes {
            var collection = self[kind]
            var resources = collection.resources
            var delta = SnapshotDiff.Changes()
            func replaceAll(with incoming: [String: ConfigResource]) {
                for name in resources.keys where incoming[name] == nil { delta.removed.insert(name) }
                for (name, resource) in incoming {
                    delta.record(upsert: resource, previous: resources[name], name: name)
                }
                resources = incoming
            }
            switch change {
            case .replace(let all):
                var incoming: [String: ConfigResource] = [:]
                incoming.reserveCapacity(all.count)
                for resource in all { incoming[resource.key.resourceName] = resource }
                replaceAll(with: incoming)
            case .replaceByName(let incoming):
                replaceAll(with: incoming)
            case .patch(let upserts, let removals):
                for resource in upserts {
                    let name = resource.key.resourceName
                    delta.record(upsert: resource, previous: resources[name], name: name)
                    resources[name] = resource
                }
                for name in removals where resources.removeValue(forKey: name) != nil {
                    delta.removed.insert(name)
                }
            }
            guard !delta.isEmpty else { continue }
            collection.resources = resources
            collection.assignRevision()
            changes[kind] = delta
            next[kind] = collection
        }
        guard !changes.isEmpty else { return (self, SnapshotDiff(from: version, to: version, changes: [:])) }
        let newVersion = version + 1
        for kind in changes.keys { next[kind]!.version = newVersion }
        return (Snapshot(version: newVersion, collections: next), SnapshotDiff(from: version, to: newVersion, changes: changes))
    }

    /// What changed from `previous` to this snapshot, by content.
    public func diff(from previous: Snapshot) -> SnapshotDiff {
        var changes: [ConfigKind: SnapshotDiff.Changes] = [:]
        for kind in Set(collections.keys).union(previous.collections.keys) {
            let old = previous[kind].resources
            let new = self[kind].resources
            var delta = SnapshotDiff.Changes()
            for name in old.keys where new[name] == nil { delta.removed.insert(name) }
            for (name, resource) in new { delta.record(upsert: resource, previous: old[name], name: name) }
            if !delta.isEmpty { changes[kind] = delta }
        }
        return SnapshotDiff(from: previous.version, to: version, changes: changes)
    }
}

/// A change to some collections.
public struct SnapshotUpdate: Sendable {
    public enum Change: Sendable {
        /// The complete new content of the collection.
        case replace([ConfigResource])
        /// The complete new content, already keyed by `namespace/name` (no re-indexing).
        case replaceByName([String: ConfigResource])
        /// Upserts and removals (by `namespace/name`).
        case patch(upsert: [ConfigResource], remove: [String])
    }

    public var changes: [ConfigKind: Change]

    public init(_ changes: [ConfigKind: Change] = [:]) { self.changes = changes }
}

/// What changed between two snapshots, per collection.
public struct SnapshotDiff: Sendable, Equatable {
    public struct Changes: Sendable, Equatable {
        public var added: Set<String> = []
        public var changed: Set<String> = []
        public var removed: Set<String> = []

        public init(added: Set<String> = [], changed: Set<String> = [], removed: Set<String> = []) {
            self.added = added
            self.changed = changed
            self.removed = removed
        }

        public var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty }
        public var all: Set<String> { added.union(changed).union(removed) }

        mutating func record(upsert resource: ConfigResource, previous: ConfigResource?, name: String) {
            if let previous {
                if !previous.hasSameContent(as: resource) { changed.insert(name) }
            } else {
                added.insert(name)
            }
        }
    }

    public var from: UInt64
    public var to: UInt64
    public var changes: [ConfigKind: Changes]

    public init(from: UInt64, to: UInt64, changes: [ConfigKind: Changes]) {
        self.from = from
        self.to = to
        self.changes = changes
    }

    public var isEmpty: Bool { changes.isEmpty }
    public var kinds: Set<ConfigKind> { Set(changes.keys) }
}
