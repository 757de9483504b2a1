import Foundation
import SwiftProtobuf

/// The last-known-good snapshot on disk: written atomically after each change, read at start so
/// SwiftPilot serves config at once even with every source down.
///
/// Format (JSON): `{"format": "swiftpilot-snapshot", "formatVersion": 1, "checksum": "<FNV-1a-64 hex of payload>",
/// "payload": {"version": N, "resources": [{kind, namespace, name, version, labels, annotations, createTime, origin, spec (base64 protobuf)}]}}`.
public struct SnapshotFile: Sendable {
    public static let format = "swiftpilot-snapshot"
    public static let formatVersion = 1
    public static let fileName = "last-known-good.json"

    public let path: String

    public init(directory: String) {
        path = (directory as NSString).appendingPathComponent(Self.fileName)
    }

    /// Why a snapshot file could not be used.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "last-known-good snapshot \(path): \(reason); starting empty" }
    }

    struct Envelope: Codable {
        var format: String
        var formatVersion: Int
        var checksum: String
        var payload: Data
    }

    struct Payload: Codable {
        struct Resource: Codable {
            var kind: ConfigKind
            var namespace: String
            var name: String
            var version: String
            var labels: [String: String]
            var annotations: [String: String]
            var createTime: Date?
            var origin: String
            var spec: Data
        }

        var version: UInt64
        var resources: [Resource]
    }

    /// Writes the snapshot atomically (temporary file, fsync, rename).
    public func write(_ snapshot: Snapshot) throws {
        let payload = Payload(version: snapshot.version, resources: ConfigKind.allCases.flatMap { kind in
            snapshot.resources(kind).map { resource in
                Payload.Resource(kind: kind, namespace: resource.key.namespace, name: resource.key.name, version: resource.version,
                                 labels: resource.labels, annotations: resource.annotations, createTime: resource.createTime,
                                 origin: resource.origin, spec: resource.spec.serializedBytes())
            }
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        let payloadBytes = try encoder.encode(payload)
        let envelope = Envelope(format: Self.format, formatVersion: Self.formatVersion, checksum: Self.checksum(payloadBytes), payload: payloadBytes)
        let bytes = try encoder.encode(envelope)
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: bytes) else {
            throw LoadError(path: temporary, reason: "cannot be created")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw LoadError(path: path, reason: "cannot be replaced (\(reason))")
        }
    }

    /// Reads the snapshot; nil when there is no file. A corrupt or foreign file is a ``LoadError``.
    public func load() throws(LoadError) -> Snapshot? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let bytes = FileManager.default.contents(atPath: path) else { throw LoadError(path: path, reason: "cannot be read") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let envelope = try? decoder.decode(Envelope.self, from: bytes) else {
            throw LoadError(path: path, reason: "is not a SwiftPilot snapshot file (unreadable envelope)")
        }
        guard envelope.format == Self.format else { throw LoadError(path: path, reason: "has format '\(envelope.format)', not '\(Self.format)'") }
        guard envelope.formatVersion == Self.formatVersion else {
            throw LoadError(path: path, reason: "has format version \(envelope.formatVersion); this SwiftPilot reads version \(Self.formatVersion)")
        }
        guard Self.checksum(envelope.payload) == envelope.checksum else { throw LoadError(path: path, reason: "fails its checksum (corrupt)") }
        let payload: Payload
        do {
            payload = try decoder.decode(Payload.self, from: envelope.payload)
        } catch {
            throw LoadError(path: path, reason: "has an unreadable payload (\(error))")
        }
        var collections: [ConfigKind: Snapshot.Collection] = [:]
        for entry in payload.resources {
            let spec: ConfigSpec
            do {
                spec = try ConfigSpec(kind: entry.kind, serializedBytes: entry.spec)
            } catch {
                throw LoadError(path: path, reason: "holds an undecodable \(entry.kind) \(entry.namespace)/\(entry.name)")
            }
            let resource = ConfigResource(key: ConfigKey(kind: entry.kind, namespace: entry.namespace, name: entry.name), spec: spec,
                                          version: entry.version, labels: entry.labels, annotations: entry.annotations,
                                          createTime: entry.createTime, origin: entry.origin)
            collections[entry.kind, default: Snapshot.Collection(version: payload.version)].resources[resource.key.resourceName] = resource
        }
        return Snapshot(version: payload.version, collections: collections)
    }

    static func checksum(_ bytes: Data) -> String {
        var hasher = FNV1a()
        hasher.combine(bytes)
        return String(hasher.value, radix: 16)
    }

    /// Writes every change of `store` (coalesced: a burst is written once) until cancelled.
    public func persist(_ store: SnapshotStore, onError: @escaping @Sendable (any Error) -> Void) async {
        // The first element is the state at subscription (already on disk, or an empty start that
        // must not overwrite a file kept for inspection).
        var lastWritten: UInt64? = store.current.version
        for await change in store.changes() {
            guard change.snapshot.version != lastWritten else { continue }
            let latest = store.current
            do {
                try write(latest)
                lastWritten = latest.version
            } catch {
                onError(error)
            }
        }
    }
}
