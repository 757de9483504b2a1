import Foundation
import Mesh
import Synchronization

/// What one proxy has been sent and has acknowledged, per type (like `istioctl proxy-status`).
public struct ProxySyncStatus: Sendable, Codable {
    public struct TypeStatus: Sendable, Codable, Equatable {
        public var sentVersion: String?
        public var sentNonce: String?
        public var sentAt: Date?
        public var ackedVersion: String?
        public var ackedAt: Date?
        /// Set while the latest response of this type was rejected.
        public var nack: String?
        public var nackedVersion: String?
        public var resourceCount: Int = 0

        /// SYNCED (latest sent is ACKed), NACKED, STALE (sent, not yet ACKed), NOT SENT.
        public var state: String {
            if nack != nil { return "NACKED" }
            guard let sentVersion else { return "NOT SENT" }
            return ackedVersion == sentVersion ? "SYNCED" : "STALE"
        }
    }

    public var connectionID: String
    public var nodeID: String
    public var proxyKind: String
    public var namespace: String
    public var connectedAt: Date
    public var snapshotVersion: UInt64?
    public var types: [String: TypeStatus] = [:]
}

/// Every connected proxy's sync status, for `/debug/syncz` and `swiftpilot proxy-status`.
public final class SyncStatusRegistry: Sendable {
    private let entries = Mutex<[String: ProxySyncStatus]>([:])

    public init() {}

    public func register(_ status: ProxySyncStatus) { entries.withLock { $0[status.connectionID] = status } }
    public func remove(connectionID: String) { _ = entries.withLock { $0.removeValue(forKey: connectionID) } }

    public func update(connectionID: String, _ body: (inout ProxySyncStatus) -> Void) {
        entries.withLock { entries in
            if var status = entries[connectionID] {
                body(&status)
                entries[connectionID] = status
            }
        }
    }

    public var all: [ProxySyncStatus] { entries.withLock { Array($0.values) }.sorted { $0.connectionID < $1.connectionID } }
    public var count: Int { entries.withLock { $0.count } }
}
