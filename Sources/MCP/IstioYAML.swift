import Foundation
import Snapshot
import SwiftProtobuf
import Yams

/// Decodes Istio YAML (`apiVersion`/`kind`/`metadata`/`spec`, several documents per file).
///
/// Every document is decoded on its own: a bad document yields a ``ConfigDecodingError`` naming the
/// file, document, line, resource and field, and the other documents are still returned.
public enum IstioYAML {
    public struct Result: Sendable {
        public var resources: [ConfigResource] = []
        public var errors: [ConfigDecodingError] = []
    }

    static let topLevelKeys: Set<String> = ["apiVersion", "kind", "metadata", "spec", "status"]
    static let metadataKeys: Set<String> = [
        "name", "namespace", "labels", "annotations", "creationTimestamp", "resourceVersion", "uid",
        "generation", "managedFields", "ownerReferences", "finalizers", "generateName", "selfLink",
    ]

    /// Decodes every document of `text`. `file` names the input in errors; `origin` is the source id.
    public static func decode(_ text: String, file: String, origin: String = "", defaultNamespace: String = "default") -> Result {
        var result = Result()
        let nodes: [Node]
        do {
            nodes = try Array(compose_all(yaml: text))
        } catch {
            result.errors.append(ConfigDecodingError(location: file, reason: "not valid YAML: \(error)"))
            return result
        }
        for (index, node) in nodes.enumerated() {
            let line = node.mark.map { " (line \($0.line))" } ?? ""
            let location = "\(file): document \(index + 1)\(line)"
            do {
                if let resource = try decodeDocument(node, location: location, origin: origin, defaultNamespace: defaultNamespace) {
                    result.resources.append(resource)
                }
            } catch let error as ConfigDecodingError {
                result.errors.append(error)
            } catch {
                result.errors.append(ConfigDecodingError(location: location, reason: "\(error)"))
            }
        }
        return result
    }

    static func decodeDocument(_ node: Node, location: String, origin: String, defaultNamespace: String) throws -> ConfigResource? {
        let value = jsonValue(Constructor.default.any(from: node))
        if value is NSNull { return nil }
        guard let object = value as? [String: Any] else {
            throw ConfigDecodingError(location: location, reason: "a document must be a mapping with apiVersion, kind, metadata and spec")
        }
        guard let apiVersion = object["apiVersion"] as? String, let kindName = object["kind"] as? String else {
            throw ConfigDecodingError(location: location, field: object["apiVersion"] == nil ? "apiVersion" : "kind", reason: "missing")
        }
        guard let kind = ConfigKind(apiVersion: apiVersion, kind: kindName) else {
            throw ConfigDecodingError(
                location: location, field: "kind",
                reason: "\(apiVersion)/\(kindName) is not a supported kind (supported: \(ConfigKind.allCases.map(\.rawValue).joined(separator: ", ")) in \(ConfigKind.group)/v1alpha3, v1beta1 or v1)")
        }
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        guard let name = metadata["name"] as? String, !name.isEmpty else {
            throw ConfigDecodingError(location: location, resource: kindName, field: "metadata.name", reason: "missing")
        }
        let namespace = (metadata["namespace"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        let resourceLabel = "\(kind) \(namespace)/\(name)"
        for key in object.keys.sorted() where !topLevelKeys.contains(key) {
            throw ConfigDecodingError(location: location, resource: resourceLabel, field: key, reason: "unknown field")
        }
        for key in metadata.keys.sorted() where !metadataKeys.contains(key) {
            throw ConfigDecodingError(location: location, resource: resourceLabel, field: "metadata.\(key)", reason: "unknown field")
        }
        let labels = try stringMap(metadata["labels"], field: "metadata.labels", location: location, resource: resourceLabel)
        let annotations = try stringMap(metadata["annotations"], field: "metadata.annotations", location: location, resource: resourceLabel)
        let specObject = object["spec"] ?? [String: Any]()
        guard specObject is [String: Any] else {
            throw ConfigDecodingError(location: location, resource: resourceLabel, field: "spec", reason: "must be a mapping")
        }
        let spec: ConfigSpec
        do {
            let json = try JSONSerialization.data(withJSONObject: specObject, options: [.sortedKeys])
            spec = try ConfigSpec(kind: kind, jsonUTF8Bytes: json)
        } catch let error as JSONDecodingError {
            throw describe(error, kind: kind, location: location, resource: resourceLabel)
        }
        return ConfigResource(
            key: ConfigKey(kind: kind, namespace: namespace, name: name), spec: spec,
            version: metadata["resourceVersion"] as? String ?? "", labels: labels, annotations: annotations,
            createTime: (metadata["creationTimestamp"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) },
            origin: origin)
    }

    static func describe(_ error: JSONDecodingError, kind: ConfigKind, location: String, resource: String) -> ConfigDecodingError {
        switch error {
        case .unknownField(let field):
            return ConfigDecodingError(location: location, resource: resource, field: "spec…\(field)",
                                       reason: "unknown field '\(field)' in the \(kind) spec (check spelling and nesting)")
        case .unrecognizedEnumValue:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "an enum field has a value the \(kind) schema does not define")
        case .malformedDuration:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "a duration is malformed; write durations in seconds with an 's' suffix, e.g. '0.5s', '300s'")
        default:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "does not match the \(kind) schema (\(error))")
        }
    }

    static func stringMap(_ value: Any?, field: String, location: String, resource: String) throws -> [String: String] {
        guard let value else { return [:] }
        guard let map = value as? [String: Any] else {
            throw ConfigDecodingError(location: location, resource: resource, field: field, reason: "must be a map of strings")
        }
        var result: [String: String] = [:]
        for (key, item) in map {
            switch item {
            case let s as String: result[key] = s
            case let n as NSNumber: result[key] = n.stringValue
            default: throw ConfigDecodingError(location: location, resource: resource, field: "\(field).\(key)", reason: "must be a string")
            }
        }
        return result
    }

    /// Turns what Yams constructs into values `JSONSerialization` accepts.
    static func jsonValue(_ value: Any) -> Any {
        switch value {
        case let map as [AnyHashable: Any]:
            var object: [String: Any] = [:]
            for (key, item) in map { object["\(key)"] = jsonValue(item) }
            return object
        case let list as [Any]:
            return list.map(jsonValue)
        case let date as Date:
            return ISO8601DateFormatter().string(from: date)
        case let data as Data:
            return data.base64EncodedString()
        case is NSNull:
            return NSNull()
        case let s as String:
            return s
        case let b as Bool:
            return b
        case let i as Int:
            return i
        case let d as Double:
            return d
        default:
            return "\(value)"
        }
    }
}
