import Snapshot

/// Why one config resource (or document) was refused. Says where, which resource, which field.
public struct ConfigDecodingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Where the input came from: a file and document, or a source and type URL.
    public var location: String
    /// `Kind namespace/name` when known.
    public var resource: String?
    /// The offending field, as a dotted path (`spec.http[0].route`), when known.
    public var field: String?
    public var reason: String

    public init(location: String, resource: String? = nil, field: String? = nil, reason: String) {
        self.location = location
        self.resource = resource
        self.field = field
        self.reason = reason
    }

    public var description: String {
        var text = location
        if let resource { text += ": \(resource)" }
        if let field { text += ": field '\(field)'" }
        return text + ": \(reason)"
    }
}
