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
    public var types = XDSTypeTable<TypeStatus>()
}

/// Every connected proxy's sync status, for `/debug/syncz` and `swiftpilot proxy-status`.
public final class SyncStatusRegistry: Sendable {
    /// One connection's status, updated in place under its own lock (pushes to many proxies do
    /// not contend on one lock or copy each status out and back).
    public final class Entry: Sendable {
        let status: Mutex<ProxySyncStatus>
        public let proxy: Proxy

        init(_ status: ProxySyncStatus, proxy: Proxy) {
            self.status = Mutex(status)
            self.proxy = proxy
        }

        public func update(_ body: (inout ProxySyncStatus) -> Void) { status.withLock { body(&$0) } }
        public var current: ProxySyncStatus { status.withLock { $0 } }
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    @discardableResult
    public func register(_ status: ProxySyncStatus, proxy: Proxy) -> Entry {
        let entry = Entry(status, proxy: proxy)
        entries.withLock { $0[status.connectionID] = entry }
        return entry
    }

    public func remove(connectionID: String) {
        _ = entries.withLock { $0.removeValue(forKey: connectionID) }
    }

    /// Every connection with its proxy identity.
    public var connections: [(status: ProxySyncStatus, proxy: Proxy)] {
        entries.withLock { Array($0.values) }.map { ($0.current, $0.proxy) }.sorted { $0.status.connectionID < $1.status.connectionID }
    }

    public var all: [ProxySyncStatus] { entries.withLock { Array($0.values) }.map(\.current).sorted { $0.connectionID < $1.connectionID } }
    public var count: Int { entries.withLock { $0.count } }
}
