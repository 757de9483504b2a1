import Foundation
import IstioAPI
import Snapshot
import SwiftProtobuf

/// Encodes and decodes `istio.mcp.v1alpha1.Resource` envelopes (metadata + body `Any`).
public enum MCPEnvelope {
    public static let resourceTypeURL = "type.googleapis.com/istio.mcp.v1alpha1.Resource"
    public static let meshConfigTypeURL = "core/v1alpha1/MeshConfig"

    /// The envelope of one resource, packed in an `Any` as MCP-over-xDS carries it.
    public static func pack(_ resource: ConfigResource) -> Google_Protobuf_Any {
        pack(envelope(resource))
    }

    /// An envelope packed in an `Any` (deterministic encoding).
    static func pack(_ envelope: Istio_Mcp_V1alpha1_Resource) -> Google_Protobuf_Any {
        var any = Google_Protobuf_Any()
        any.typeURL = resourceTypeURL
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        any.value = (try? envelope.serializedBytes(options: options)) ?? Data()
        return any
    }

    public static func metadata(of resource: ConfigResource) -> Istio_Mcp_V1alpha1_Metadata {
        var metadata = Istio_Mcp_V1alpha1_Metadata()
        metadata.name = resource.key.resourceName
        metadata.version = resource.version
        metadata.labels = resource.labels
        metadata.annotations = resource.annotations
        if let created = resource.createTime { metadata.createTime = Google_Protobuf_Timestamp(date: created) }
        return metadata
    }

    /// Why an envelope could not even be read (the whole response is NACKed for this).
    public struct EnvelopeError: Error, CustomStringConvertible, Sendable {
        public var index: Int
        public var reason: String
        public var description: String { "resource #\(index): \(reason)" }
    }

    /// Decodes the `Any` list of one response. Envelope-level failures throw; resource-level
    /// problems (bad name, wrong body type, undecodable body) become per-resource errors.
    public static func decode(_ anys: [Google_Protobuf_Any], kind: ConfigKind, location: String, origin: String,
                              revision: String? = nil) throws(EnvelopeError) -> (resources: [ConfigResource], errors: [ConfigDecodingError]) {
        var cache: [Data: ConfigResource] = [:]
        return try decode(anys, kind: kind, location: location, origin: origin, revision: revision, reusing: &cache)
    }

    /// ``decode(_:kind:location:origin:revision:)`` that reuses what an earlier response decoded:
    /// `cache` maps envelope bytes to their resource and is replaced by this response's. A source
    /// that re-publishes a collection of thousands with one change costs one decode, not thousands.
    public static func decode(_ anys: [Google_Protobuf_Any], kind: ConfigKind, location: String, origin: String,
                              revision: String? = nil, reusing cache: inout [Data: ConfigResource]) throws(EnvelopeError)
        -> (resources: [ConfigResource], errors: [ConfigDecodingError]) {
        let decoded = try decodeChanges(anys, kind: kind, location: location, origin: origin, revision: revision, reusing: &cache)
        return (decoded.resources, decoded.errors)
    }

    /// A response decoded against the one before it (the `cache` of
    /// ``decode(_:kind:location:origin:revision:reusing:)``).
    public struct Decoded: Sendable {
        /// Every resource the response delivers, once per name.
        public var resources: [ConfigResource] = []
        public var errors: [ConfigDecodingError] = []
        /// The resources whose envelopes the response before did not have: new or changed.
        public var fresh: [ConfigResource] = []
        /// Names the response before delivered that this one does not deliver at all.
        public var removed: [String] = []
    }

    /// ``decode(_:kind:location:origin:revision:reusing:)`` that also says what changed since the
    /// response `cache` holds. A name delivered twice is an error; its last envelope applies.
    public static func decodeChanges(_ anys: [Google_Protobuf_Any], kind: ConfigKind, location: String, origin: String,
                                     revision: String? = nil, reusing cache: inout [Data: ConfigResource]) throws(EnvelopeError) -> Decoded {
        var result = Decoded()
        // Each delivered resource, its envelope's bytes (nil when it does not decode cleanly) and
        // whether the response before lacked that envelope.
        var delivered: [(resource: ConfigResource, bytes: Data?, fresh: Bool)] = []
        delivered.reserveCapacity(anys.count)
        for (index, any) in anys.enumerated() {
            guard any.typeURL == resourceTypeURL else {
                throw EnvelopeError(index: index, reason: "type URL '\(any.typeURL)' is not \(resourceTypeURL)")
            }
            if let known = cache[any.value] {
                delivered.append((known, any.value, false))
                continue
            }
            let envelope: Istio_Mcp_V1alpha1_Resource
            do {
                envelope = try Istio_Mcp_V1alpha1_Resource(serializedBytes: any.value)
            } catch {
                throw EnvelopeError(index: index, reason: "not a decodable istio.mcp.v1alpha1.Resource (\(error))")
            }
            let decoded = try decode([envelope], kind: kind, location: location, origin: origin, revision: revision, strictBodies: false)
            result.errors += decoded.errors
            let bytes = decoded.errors.isEmpty ? any.value : nil
            delivered += decoded.resources.map { ($0, bytes, true) }
        }
        // Each name's last envelope applies, as a whole-set replace would keep it.
        var last: [ConfigKey: Int] = [:]
        last.reserveCapacity(delivered.count)
        for (index, item) in delivered.enumerated() { last[item.resource.key] = index }
        let repeats = last.count < delivered.count
        var next: [Data: ConfigResource] = [:]
        next.reserveCapacity(last.count)
        result.resources.reserveCapacity(last.count)
        for (index, item) in delivered.enumerated() {
            if repeats, last[item.resource.key] != index {
                result.errors.append(ConfigDecodingError(location: location, resource: "\(item.resource.key)", field: "metadata.name",
                                                         reason: "delivered more than once in one response; the last one applies"))
                continue
            }
            result.resources.append(item.resource)
            if item.fresh { result.fresh.append(item.resource) }
            if let bytes = item.bytes { next[bytes] = item.resource }
        }
        // Every envelope of the response before found again: nothing gone, no need to look.
        if next.count - result.fresh.count < cache.count {
            result.removed = cache.values.compactMap { last[$0.key] == nil ? $0.key.resourceName : nil }
        }
        cache = next
        return result
    }

    /// Decodes envelopes: a bad name, a body of another kind or an undecodable body is a
    /// per-resource error, unless `strictBodies` (the legacy protocol NACKs body problems), which
    /// makes body problems an ``EnvelopeError``.
    public static func decode(_ envelopes: [Istio_Mcp_V1alpha1_Resource], kind: ConfigKind, location: String, origin: String,
                                     revision: String? = nil, strictBodies: Bool) throws(EnvelopeError) -> (resources: [ConfigResource], errors: [ConfigDecodingError]) {
        var resources: [ConfigResource] = []
        var errors: [ConfigDecodingError] = []
        for (index, envelope) in envelopes.enumerated() {
            let name = envelope.metadata.name
            let key: ConfigKey
            do {
                key = try ConfigKey(kind: kind, resourceName: name)
            } catch {
                errors.append(ConfigDecodingError(location: location, resource: "\(kind) \(name)", field: "metadata.name", reason: "\(error)"))
                continue
            }
            if let revision, let label = envelope.metadata.labels["istio.io/rev"], label != revision { continue }
            guard let bodyKind = ConfigKind(bodyTypeURL: envelope.body.typeURL), bodyKind == kind else {
                let reason = "body type '\(envelope.body.typeURL)' is not a \(kind)"
                if strictBodies { throw EnvelopeError(index: index, reason: "\(key): \(reason)") }
                errors.append(ConfigDecodingError(location: location, resource: "\(key)", field: "body", reason: reason))
                continue
            }
            do {
                let spec = try ConfigSpec(kind: kind, serializedBytes: envelope.body.value)
                resources.append(ConfigResource(
                    key: key, spec: spec, version: envelope.metadata.version, labels: envelope.metadata.labels,
                    annotations: envelope.metadata.annotations,
                    createTime: envelope.metadata.hasCreateTime ? envelope.metadata.createTime.date : nil, origin: origin))
            } catch {
                if strictBodies { throw EnvelopeError(index: index, reason: "\(key): undecodable \(kind) body (\(error))") }
                errors.append(ConfigDecodingError(location: location, resource: "\(key)", field: "body", reason: "undecodable \(kind): \(error)"))
            }
        }
        return (resources, errors)
    }

    /// The envelope of a resource (for the legacy protocol, which carries envelopes directly).
    public static func envelope(_ resource: ConfigResource) -> Istio_Mcp_V1alpha1_Resource {
        envelope(resource, body: resource.spec.packedAny())
    }

    /// The envelope of a resource whose body is already packed.
    static func envelope(_ resource: ConfigResource, body: Google_Protobuf_Any) -> Istio_Mcp_V1alpha1_Resource {
        var envelope = Istio_Mcp_V1alpha1_Resource()
        envelope.metadata = metadata(of: resource)
        envelope.body = body
        return envelope
    }
}
