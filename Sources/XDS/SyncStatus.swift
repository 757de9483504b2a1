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
        /// The Istio objects (`Kind namespace/name`) behind the rejected resources.
        public var nackSources: [String]?
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
    /// `sotw` or `delta`.
    public var transport: String = "sotw"
    public var snapshotVersion: UInt64?
    public var types: [String: TypeStatus] = [:]
}

/// Every connected proxy's sync status, for `/debug/syncz` and `swiftpilot proxy-status`.
public final class SyncStatusRegistry: Sendable {
    private let entries = Mutex<[String: ProxySyncStatus]>([:])
    private let proxies = Mutex<[String: Proxy]>([:])

    public init() {}

    public func register(_ status: ProxySyncStatus, proxy: Proxy) {
        entries.withLock { $0[status.connectionID] = status }
        proxies.withLock { $0[status.connectionID] = proxy }
    }

    public func remove(connectionID: String) {
        _ = entries.withLock { $0.removeValue(forKey: connectionID) }
        _ = proxies.withLock { $0.removeValue(forKey: connectionID) }
    }

    /// Every connection with its proxy identity.
    public var connections: [(status: ProxySyncStatus, proxy: Proxy)] {
        let all = self.all
        let proxies = self.proxies.withLock { $0 }
        return all.compactMap { status in proxies[status.connectionID].map { (status, $0) } }
    }

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
