import Foundation
import Snapshot

/// A directory of Istio YAML files (`*.yaml`, `*.yml`, recursively), loaded and watched by polling.
public struct ConfigDirectory: Sendable {
    public var path: String
    public var origin: String

    public init(path: String, origin: String? = nil) {
        self.path = path
        self.origin = origin ?? "fs://\(path)"
    }

    /// Everything that decoded, per kind, and every refused document.
    public struct Contents: Sendable {
        public var resources: [ConfigResource] = []
        public var errors: [ConfigDecodingError] = []

        /// Resources grouped by kind, every kind present (empty when none).
        public var byKind: [ConfigKind: [ConfigResource]] {
            var result = Dictionary(uniqueKeysWithValues: ConfigKind.allCases.map { ($0, [ConfigResource]()) })
            for resource in resources { result[resource.key.kind, default: []].append(resource) }
            return result
        }
    }

    /// The YAML files, sorted, with a fingerprint of their sizes and modification times.
    func files() -> (paths: [String], fingerprint: String) {
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(atPath: path) else { return ([], "missing") }
        var paths: [String] = []
        for case let relative as String in enumerator where relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") {
            paths.append((path as NSString).appendingPathComponent(relative))
        }
        paths.sort()
        var fingerprint = ""
        for file in paths {
            let attributes = try? manager.attributesOfItem(atPath: file)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            fingerprint += "\(file):\(size):\(modified);"
        }
        return (paths, fingerprint)
    }

    /// Reads and decodes every file. A duplicate kind/namespace/name keeps the first (file order).
    public func load() -> Contents {
        var contents = Contents()
        var seen = Set<ConfigKey>()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            contents.errors.append(ConfigDecodingError(location: path, reason: "not a readable directory"))
            return contents
        }
        for file in files().paths {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                contents.errors.append(ConfigDecodingError(location: file, reason: "cannot be read as UTF-8 text"))
                continue
            }
            let result = IstioYAML.decode(text, file: file, origin: origin)
            contents.errors += result.errors
            for resource in result.resources {
                if seen.insert(resource.key).inserted {
                    contents.resources.append(resource)
                } else {
                    contents.errors.append(ConfigDecodingError(location: file, resource: "\(resource.key)", reason: "defined twice; the first definition is kept"))
                }
            }
        }
        return contents
    }

    /// Loads now, then again whenever the files change (polled every `interval`, reported once the
    /// change has been stable for one more interval so half-written files are not read).
    public func watch(interval: Duration = .seconds(1)) -> AsyncStream<Contents> {
        AsyncStream { continuation in
            let task = Task {
                var last = files().fingerprint
                continuation.yield(load())
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    let current = files().fingerprint
                    guard current != last else { continue }
                    try? await Task.sleep(for: interval)
                    let settled = files().fingerprint
                    guard settled == current else { continue }
                    last = settled
                    continuation.yield(load())
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
