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
    ///
    /// Documents are split on `---` lines and parsed one by one, so a YAML syntax error loses only
    /// its own document.
    public static func decode(_ text: String, file: String, origin: String = "", defaultNamespace: String = "default") -> Result {
        var result = Result()
        for (index, document) in documents(of: text).enumerated() {
            let location = "\(file): document \(index + 1) (line \(document.line))"
            do {
                guard let node = try compose(yaml: document.text) else { continue }
                if var resource = try decodeDocument(node, location: location, origin: origin, defaultNamespace: defaultNamespace) {
                    resource.sourceLocation = location
                    result.resources.append(resource)
                }
            } catch let error as ConfigDecodingError {
                result.errors.append(error)
            } catch let error as YamlError {
                result.errors.append(ConfigDecodingError(location: location, reason: "not valid YAML: \(describe(error, lineOffset: document.line - 1))"))
            } catch {
                result.errors.append(ConfigDecodingError(location: location, reason: "\(error)"))
            }
        }
        return result
    }

    /// The documents of a multi-document text, with the line each starts on (1-based).
    static func documents(of text: String) -> [(text: String, line: Int)] {
        var documents: [(text: String, line: Int)] = []
        var current: [Substring] = []
        var start = 1
        /// Directives (`%YAML`, `%TAG`) belong to the document their `---` starts.
        func onlyPreamble(_ lines: [Substring]) -> Bool {
            lines.allSatisfy { line in
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                return trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("%")
            }
        }
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let isSeparator = line == "---" || line.hasPrefix("--- ") || line.hasPrefix("---\t") || line == "---\r"
            if isSeparator, !(current.contains { $0.hasPrefix("%") } && onlyPreamble(current)) {
                documents.append((current.joined(separator: "\n"), start))
                current = []
                start = number + 2
            } else {
                current.append(line)
            }
        }
        documents.append((current.joined(separator: "\n"), start))
        // Documents holding only blank lines and comments are skipped.
        return documents.filter { !onlyPreamble($0.text.split(separator: "\n", omittingEmptySubsequences: false)) }
    }

    static func describe(_ error: YamlError, lineOffset: Int) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _):
            return "\(context.map { "\($0.text) " } ?? "")\(problem) at line \(mark.line + lineOffset), column \(mark.column)"
        case .parser(let context, let problem, let mark, _):
            return "\(context.map { "\($0.text) " } ?? "")\(problem) at line \(mark.line + lineOffset), column \(mark.column)"
        default:
            return "\(error)"
        }
    }

    static func decodeDocument(_ node: Node, location: String, origin: String, defaultNamespace: String) throws -> ConfigResource? {
        let value = jsonValue(node)
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
                reason: "\(apiVersion)/\(kindName) is not a supported kind (supported: \(ConfigKind.networking.map(\.rawValue).joined(separator: ", ")) in \(ConfigKind.networkingGroup)/v1alpha3, v1beta1 or v1; PeerAuthentication in \(ConfigKind.securityGroup)/v1beta1 or v1)")
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
            let json = try JSONSerialization.data(withJSONObject: normalizingDurations(specObject), options: [.sortedKeys])
            spec = try ConfigSpec(kind: kind, jsonUTF8Bytes: json)
        } catch let error as JSONDecodingError {
            throw describe(error, kind: kind, location: location, resource: resourceLabel, spec: specObject)
        }
        return ConfigResource(
            key: ConfigKey(kind: kind, namespace: namespace, name: name), spec: spec,
            version: metadata["resourceVersion"] as? String ?? "", labels: labels, annotations: annotations,
            createTime: (metadata["creationTimestamp"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) },
            origin: origin)
    }

    static func describe(_ error: JSONDecodingError, kind: ConfigKind, location: String, resource: String, spec: Any) -> ConfigDecodingError {
        switch error {
        case .unknownField(let field):
            return ConfigDecodingError(location: location, resource: resource, field: path(of: field, in: spec, prefix: "spec") ?? "spec…\(field)",
                                       reason: "unknown field '\(field)' in the \(kind) spec (check spelling and nesting)")
        case .unrecognizedEnumValue:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "an enum field has a value the \(kind) schema does not define")
        case .malformedDuration:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "a duration is malformed; write durations like '0.5s', '300s', '5m' or '1h30m'")
        default:
            return ConfigDecodingError(location: location, resource: resource, field: "spec", reason: "does not match the \(kind) schema (\(error))")
        }
    }

    /// The path of the first key `name` in a decoded JSON value (`spec.http[0].timout`).
    static func path(of name: String, in value: Any, prefix: String) -> String? {
        switch value {
        case let object as [String: Any]:
            if object[name] != nil { return "\(prefix).\(name)" }
            for key in object.keys.sorted() {
                if let found = path(of: name, in: object[key]!, prefix: "\(prefix).\(key)") { return found }
            }
        case let list as [Any]:
            for (index, item) in list.enumerated() {
                if let found = path(of: name, in: item, prefix: "\(prefix)[\(index)]") { return found }
            }
        default:
            break
        }
        return nil
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
            case let b as Bool: result[key] = b ? "true" : "false"
            case let i as Int: result[key] = String(i)
            case let d as Double: result[key] = String(d)
            default: throw ConfigDecodingError(location: location, resource: resource, field: "\(field).\(key)", reason: "must be a string")
            }
        }
        return result
    }

    /// The names (proto and JSON forms) of every `google.protobuf.Duration` field of the Istio
    /// networking API. Istio accepts Go durations there (`5m`, `1h30m`, `500ms`); proto3 JSON
    /// wants seconds (`300s`), so those values are rewritten — in these fields only.
    static let durationFields: Set<String> = [
        "backoff", "baseEjectionTime", "base_ejection_time", "budgetInterval", "budget_interval", "connectTimeout", "connect_timeout",
        "duration", "exponentialDelay", "exponential_delay", "fixedDelay", "fixed_delay", "idleTimeout", "idle_timeout", "interval",
        "maxAge", "max_age", "maxConnectionDuration", "max_connection_duration", "perTryTimeout", "per_try_timeout", "time",
        "timeout", "ttl", "warmupDurationSecs", "warmup_duration_secs",
    ]

    static func normalizingDurations(_ value: Any) -> Any {
        switch value {
        case let object as [String: Any]:
            var result: [String: Any] = [:]
            for (key, item) in object {
                if durationFields.contains(key), let text = item as? String, let seconds = goDurationSeconds(text) {
                    result[key] = seconds
                } else {
                    result[key] = normalizingDurations(item)
                }
            }
            return result
        case let list as [Any]:
            return list.map(normalizingDurations)
        default:
            return value
        }
    }

    /// `1h30m`, `500ms`, `2.5s`, `10us` → `"5400s"`-style proto3 JSON; nil when not a Go duration
    /// or already in seconds form (left for the protobuf decoder to check).
    static func goDurationSeconds(_ text: String) -> String? {
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("h", 3600), ("m", 60), ("s", 1)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        let negative = rest.hasPrefix("-")
        if negative { rest = rest.dropFirst() }
        var total = 0.0
        var parts = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.count)
            total += value * scale
            parts += 1
        }
        guard parts > 0, !(parts == 1 && text.hasSuffix("s") && !text.hasSuffix("ms") && !text.hasSuffix("us") && !text.hasSuffix("ns") && !text.hasSuffix("µs")) else {
            return nil
        }
        let formatted = String(format: "%.9f", total).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
        return (negative ? "-" : "") + formatted + "s"
    }

    /// The JSON value of a YAML node. Scalars keep YAML's core types (int, float, bool, null);
    /// everything else, timestamps included, stays the string that was written.
    static func jsonValue(_ node: Node) -> Any {
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .int: return node.int ?? scalar.string
            case .float: return node.float ?? scalar.string
            case .bool: return node.bool ?? scalar.string
            case .null: return NSNull()
            default: return scalar.string
            }
        case .mapping(let mapping):
            var object: [String: Any] = [:]
            for (key, value) in mapping { object[key.string ?? "\(key)"] = jsonValue(value) }
            return object
        case .sequence(let sequence):
            return sequence.map(jsonValue)
        case .alias:
            return NSNull()
        }
    }
}
