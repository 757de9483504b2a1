import EnvoyAPI
import Translation

/// The xDS resource types SwiftPilot serves, in make-before-break push order.
public enum XDSType: String, CaseIterable, Sendable, Comparable, Codable {
    case cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    case endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    case listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    case route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    /// Virtual Host Discovery (VHDS): delta xDS only, after RDS.
    case virtualHost = "type.googleapis.com/envoy.config.route.v3.VirtualHost"

    public var typeURL: String { rawValue }

    /// CDS, EDS, LDS, RDS, VHDS.
    public var shortName: String {
        switch self {
        case .cluster: "CDS"
        case .endpoint: "EDS"
        case .listener: "LDS"
        case .route: "RDS"
        case .virtualHost: "VHDS"
        }
    }

    /// Listener and Cluster responses carry the full set (absence deletes) in state of the world.
    public var isFullStateInSotW: Bool { self == .cluster || self == .listener }

    /// VHDS exists only in delta xDS; a state-of-the-world stream does not serve it.
    public var isDeltaOnly: Bool { self == .virtualHost }

    public static func < (lhs: XDSType, rhs: XDSType) -> Bool { lhs.ordinal < rhs.ordinal }
}

extension XDSType {
    /// The type's place in ``allCases`` (push order), stated once more so that comparing two types
    /// does not search `allCases` (a test holds the two orders together).
    var ordinal: Int {
        switch self {
        case .cluster: 0
        case .endpoint: 1
        case .listener: 2
        case .route: 3
        case .virtualHost: 4
        }
    }
}

/// One optional value per xDS type, in one array with a slot per type up to the last one used
/// (state of the world never uses VHDS's). Every stream and every sync status keeps one per
/// connected proxy: a `Dictionary` of its four or five entries takes eight buckets, about twice
/// the room. Encodes as a dictionary keyed by the types' short names (`CDS`, `EDS`, …), present
/// values only.
public struct XDSTypeTable<Value> {
    /// Indexed by ``XDSType/ordinal``; never longer than the last type set.
    private var slots: [Value?] = []

    public init() {}

    public subscript(type: XDSType) -> Value? {
        get { type.ordinal < slots.count ? slots[type.ordinal] : nil }
        _modify {
            let index = type.ordinal
            if index >= slots.count {
                // Exactly as many slots as needed (appending would double the capacity).
                var grown: [Value?] = []
                grown.reserveCapacity(index + 1)
                grown.append(contentsOf: slots)
                grown.append(contentsOf: repeatElement(nil, count: index + 1 - slots.count))
                slots = grown
            }
            yield &slots[index]
        }
    }

    public subscript(type: XDSType, default value: @autoclosure () -> Value) -> Value {
        get { self[type] ?? value() }
        _modify {
            // Checks the slot in place: reading `self[type]` would copy the value on every call.
            let index = type.ordinal
            if index >= slots.count || slots[index] == nil { self[type] = value() }
            yield &slots[index]!
        }
    }

    /// Takes the value out, leaving its slot empty (the caller then holds its only copy).
    @discardableResult
    public mutating func removeValue(forKey type: XDSType) -> Value? {
        guard type.ordinal < slots.count else { return nil }
        var value: Value?
        swap(&value, &slots[type.ordinal])
        return value
    }

    /// Slots allocated: one per type up to the last one set.
    var slotCount: Int { slots.count }

    /// The present values with their types, in push order.
    public var entries: [(type: XDSType, value: Value)] {
        XDSType.allCases.compactMap { type in self[type].map { (type, $0) } }
    }
}

extension XDSTypeTable: Sendable where Value: Sendable {}

extension XDSTypeTable: Codable where Value: Codable {
    private struct ShortName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ShortName.self)
        self.init()
        for type in XDSType.allCases {
            if let value = try container.decodeIfPresent(Value.self, forKey: ShortName(stringValue: type.shortName)) { self[type] = value }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ShortName.self)
        for (type, value) in entries { try container.encode(value, forKey: ShortName(stringValue: type.shortName)) }
    }
}
