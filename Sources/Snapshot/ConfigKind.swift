import IstioAPI
import SwiftProtobuf

/// The Istio kinds SwiftPilot consumes: the networking kinds and PeerAuthentication.
///
/// One kind has one body message (`istio.networking.v1alpha3.<Kind>`,
/// `istio.security.v1beta1.PeerAuthentication`), whatever API version a producer names it by:
/// `v1alpha3`, `v1beta1` and `v1` (security: `v1beta1`, `v1`) are aliases on the wire.
public enum ConfigKind: String, CaseIterable, Sendable, Codable, Comparable, CustomStringConvertible {
    case serviceEntry = "ServiceEntry"
    case workloadEntry = "WorkloadEntry"
    case workloadGroup = "WorkloadGroup"
    case destinationRule = "DestinationRule"
    case gateway = "Gateway"
    case virtualService = "VirtualService"
    case sidecar = "Sidecar"
    case envoyFilter = "EnvoyFilter"
    case peerAuthentication = "PeerAuthentication"

    /// The networking kinds: what every MCP source of Istio config serves.
    public static let networking: [ConfigKind] = allCases.filter { $0.group == networkingGroup }
    public static let networkingGroup = "networking.istio.io"
    public static let securityGroup = "security.istio.io"

    /// The API group: `networking.istio.io`, or `security.istio.io` for PeerAuthentication.
    public var group: String { self == .peerAuthentication ? Self.securityGroup : Self.networkingGroup }
    /// The API versions the kind exists under, oldest first.
    public var apiVersions: [String] { self == .peerAuthentication ? ["v1beta1", "v1"] : ["v1alpha3", "v1beta1", "v1"] }
    /// The proto package of the body, less its version: `istio.networking`, `istio.security`.
    var protoPackage: String { self == .peerAuthentication ? "istio.security" : "istio.networking" }
    /// The version of the body message's proto package.
    var protoVersion: String { self == .peerAuthentication ? "v1beta1" : "v1alpha3" }

    public var description: String { rawValue }

    public static func < (lhs: ConfigKind, rhs: ConfigKind) -> Bool { ordinals[lhs]! < ordinals[rhs]! }

    /// Position in ``allCases``, computed once (not an array built per comparison).
    private static let ordinals = Dictionary(uniqueKeysWithValues: allCases.enumerated().map { ($1, $0) })

    /// The version current istiod uses in MCP-over-xDS type URLs (`v1`, except EnvoyFilter).
    public var storageVersion: String { self == .envoyFilter ? "v1alpha3" : "v1" }

    /// The MCP-over-xDS type URL this kind is requested by: `networking.istio.io/v1/VirtualService`.
    public var mcpTypeURL: String { mcpTypeURL(version: storageVersion) }

    /// The MCP-over-xDS type URL of the kind under `version`; a networking-only version
    /// (`v1alpha3`) names a security kind by its oldest version.
    public func mcpTypeURL(version: String) -> String {
        "\(group)/\(apiVersions.contains(version) ? version : apiVersions[0])/\(rawValue)"
    }

    /// The `Any` type URL of the body: `type.googleapis.com/istio.networking.v1alpha3.VirtualService`.
    public var bodyTypeURL: String { "type.googleapis.com/\(protoPackage).\(protoVersion).\(rawValue)" }

    /// The legacy (Galley-era) MCP collection name: `istio/networking/v1alpha3/virtualservices`,
    /// `istio/security/v1beta1/peerauthentications`.
    public var legacyCollection: String {
        let name = rawValue.lowercased()
        // serviceentry → serviceentries, gateway → gateways.
        let consonantY = name.hasSuffix("y") && !"aeiou".contains(name.dropLast().last ?? "a")
        let area = protoPackage.dropFirst("istio.".count)
        return "istio/\(area)/\(protoVersion)/" + (consonantY ? name.dropLast() + "ies" : name + "s")
    }

    /// The kind named by an MCP-over-xDS type URL (`<group>/<version>/<Kind>`).
    public init?(mcpTypeURL: String) {
        let parts = mcpTypeURL.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let kind = ConfigKind(rawValue: String(parts[2])), parts[0] == kind.group,
              kind.apiVersions.contains(String(parts[1])) else { return nil }
        self = kind
    }

    /// The kind of a body type URL, under any of the aliased proto packages.
    public init?(bodyTypeURL: String) {
        let name = bodyTypeURL.split(separator: "/").last.map(String.init) ?? bodyTypeURL
        guard let dot = name.lastIndex(of: "."), let kind = ConfigKind(rawValue: String(name[name.index(after: dot)...])) else { return nil }
        let prefix = name[..<dot]
        guard kind.apiVersions.contains(where: { prefix == "\(kind.protoPackage).\($0)" }) else { return nil }
        self = kind
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
