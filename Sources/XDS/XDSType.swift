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

    public static func < (lhs: XDSType, rhs: XDSType) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
