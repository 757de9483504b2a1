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
        public var resourceCount: Int = 0
        /// The rejection fields, boxed: they are rare, and every proxy keeps a status per type.
        private var rejection: Rejection?

        /// Set while the latest response of this type was rejected.
        public var nack: String? {
            get { rejection?.message }
            set { rejection = Rejection(message: newValue, version: nackedVersion, sources: nackSources) }
        }
        public var nackedVersion: String? {
            get { rejection?.version }
            set { rejection = Rejection(message: nack, version: newValue, sources: nackSources) }
        }
        /// The Istio objects (`Kind namespace/name`) behind the rejected resources.
        public var nackSources: [String]? {
            get { rejection?.sources }
            set { rejection = Rejection(message: nack, version: nackedVersion, sources: newValue) }
        }

        public init() {}

        /// The latest response sent was rejected: `message` from the proxy, `sources` behind it.
        public mutating func reject(message: String, sources: [String]) {
            rejection = Rejection(message: message, version: sentVersion, sources: sources)
        }

        /// The proxy accepted a response since its last rejection.
        public mutating func clearRejection() { rejection = nil }

        private final class Rejection: Sendable, Equatable {
            let message: String?
            let version: String?
            let sources: [String]?

            /// `nil` when every field is `nil`.
            init?(message: String?, version: String?, sources: [String]?) {
                guard message != nil || version != nil || sources != nil else { return nil }
                self.message = message
                self.version = version
                self.sources = sources
            }

            static func == (a: Rejection, b: Rejection) -> Bool {
                a.message == b.message && a.version == b.version && a.sources == b.sources
            }
        }

        private enum CodingKeys: String, CodingKey {
            case sentVersion, sentNonce, sentAt, ackedVersion, ackedAt, nack, nackedVersion, nackSources, resourceCount
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            sentVersion = try container.decodeIfPresent(String.self, forKey: .sentVersion)
            sentNonce = try container.decodeIfPresent(String.self, forKey: .sentNonce)
            sentAt = try container.decodeIfPresent(Date.self, forKey: .sentAt)
            ackedVersion = try container.decodeIfPresent(String.self, forKey: .ackedVersion)
            ackedAt = try container.decodeIfPresent(Date.self, forKey: .ackedAt)
            resourceCount = try container.decodeIfPresent(Int.self, forKey: .resourceCount) ?? 0
            rejection = Rejection(message: try container.decodeIfPresent(String.self, forKey: .nack),
                                  version: try container.decodeIfPresent(String.self, forKey: .nackedVersion),
                                  sources: try container.decodeIfPresent([String].self, forKey: .nackSources))
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(sentVersion, forKey: .sentVersion)
            try container.encodeIfPresent(sentNonce, forKey: .sentNonce)
            try container.encodeIfPresent(sentAt, forKey: .sentAt)
            try container.encodeIfPresent(ackedVersion, forKey: .ackedVersion)
            try container.encodeIfPresent(ackedAt, forKey: .ackedAt)
            try container.encodeIfPresent(nack, forKey: .nack)
            try container.encodeIfPresent(nackedVersion, forKey: .nackedVersion)
            try container.encodeIfPresent(nackSources, forKey: .nackSources)
            try container.encode(resourceCount, forKey: .resourceCount)
        }

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
