import IstioAPI
import SwiftProtobuf

/// The Istio networking kinds SwiftPilot consumes.
///
/// One kind has one body message (`istio.networking.v1alpha3.<Kind>`), whatever API version
/// a producer names it by: `v1alpha3`, `v1beta1` and `v1` are aliases on the wire.
public enum ConfigKind: String, CaseIterable, Sendable, Codable, Comparable, CustomStringConvertible {
    case serviceEntry = "ServiceEntry"
    case workloadEntry = "WorkloadEntry"
    case workloadGroup = "WorkloadGroup"
    case destinationRule = "DestinationRule"
    case gateway = "Gateway"
    case virtualService = "VirtualService"
    case sidecar = "Sidecar"
    case envoyFilter = "EnvoyFilter"

    public static let group = "networking.istio.io"
    static let apiVersions = ["v1alpha3", "v1beta1", "v1"]

    public var description: String { rawValue }

    public static func < (lhs: ConfigKind, rhs: ConfigKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The version current istiod uses in MCP-over-xDS type URLs (`v1`, except EnvoyFilter).
    public var storageVersion: String { self == .envoyFilter ? "v1alpha3" : "v1" }

    /// The MCP-over-xDS type URL this kind is requested by: `networking.istio.io/v1/VirtualService`.
    public var mcpTypeURL: String { "\(Self.group)/\(storageVersion)/\(rawValue)" }

    /// The `Any` type URL of the body: `type.googleapis.com/istio.networking.v1alpha3.VirtualService`.
    public var bodyTypeURL: String { "type.googleapis.com/istio.networking.v1alpha3.\(rawValue)" }

    /// The legacy (Galley-era) MCP collection name: `istio/networking/v1alpha3/virtualservices`.
    public var legacyCollection: String {
        let name = rawValue.lowercased()
        // serviceentry → serviceentries, gateway → gateways.
        let consonantY = name.hasSuffix("y") && !"aeiou".contains(name.dropLast().last ?? "a")
        return "istio/networking/v1alpha3/" + (consonantY ? name.dropLast() + "ies" : name + "s")
    }

    /// The kind named by an MCP-over-xDS type URL (`networking.istio.io/<v1alpha3|v1beta1|v1>/<Kind>`).
    public init?(mcpTypeURL: String) {
        let parts = mcpTypeURL.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.group, Self.apiVersions.contains(String(parts[1])),
              let kind = ConfigKind(rawValue: String(parts[2])) else { return nil }
        self = kind
    }

    /// The kind of a body type URL, under any of the aliased proto packages.
    public init?(bodyTypeURL: String) {
        let name = bodyTypeURL.split(separator: "/").last.map(String.init) ?? bodyTypeURL
        for version in Self.apiVersions {
            let prefix = "istio.networking.\(version)."
            if name.hasPrefix(prefix), let kind = ConfigKind(rawValue: String(name.dropFirst(prefix.count))) {
                self = kind
                return
            }
        }
        return nil
    }

    /// The kind of a legacy MCP collection name.
    public init?(legacyCollection: String) {
        guard let kind = ConfigKind.allCases.first(where: { $0.legacyCollection == legacyCollection }) else { return nil }
        self = kind
    }

    /// The kind named by a Kubernetes-style `apiVersion` and `kind`.
    public init?(apiVersion: String, kind: String) {
        self.init(mcpTypeURL: "\(apiVersion)/\(kind)")
    }
}
