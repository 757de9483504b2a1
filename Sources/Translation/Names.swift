import IstioAPI
import Mesh

/// Istio's resource names, so Istio users recognise what they see in Envoy.
public enum Names {
    public static let blackHoleCluster = "BlackHoleCluster"
    public static let defaultDomainSuffix = Hostname.defaultDomainSuffix

    /// `outbound|<port>|<subset>|<host>`.
    public static func outboundCluster(port: UInt32, subset: String = "", host: String) -> String {
        "outbound|\(port)|\(subset)|\(host)"
    }

    /// The parts of an `outbound|<port>|<subset>|<host>` cluster name; nil for other names.
    public static func outboundClusterParts(_ name: String) -> (port: UInt32, subset: String, host: String)? {
        let parts = name.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "outbound", let port = UInt32(parts[1]) else { return nil }
        return (port, String(parts[2]), String(parts[3]))
    }

    /// Whether `name`'s UTF-8 ends with one of `suffixes` (byte comparison, no allocation).
    static func endsWithAny(_ name: String, of suffixes: [[UInt8]]) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            suffixes.contains { suffix in
                suffix.count <= bytes.count && bytes[(bytes.count - suffix.count)...].elementsEqual(suffix)
            }
        }
    }

    /// `<bind>_<port>`, e.g. `0.0.0.0_8080`.
    public static func listener(bind: String = "0.0.0.0", port: UInt32) -> String { "\(bind)_\(port)" }

    /// Gateway plaintext HTTP route name: `http.<port>` (+ `.<bind>` when bound).
    public static func gatewayHTTPRoute(port: UInt32, bind: String = "") -> String {
        bind.isEmpty ? "http.\(port)" : "http.\(port).\(bind)"
    }

    /// Gateway TLS-terminated HTTPS route name: `https.<port>.<portName>.<gateway>.<namespace>` (+ `.<bind>`).
    public static func gatewayHTTPSRoute(port: UInt32, portName: String, gateway: String, namespace: String, bind: String = "") -> String {
        let name = "https.\(port).\(portName).\(gateway).\(namespace)"
        return bind.isEmpty ? name : "\(name).\(bind)"
    }

    /// Virtual host name `<host>:<port>`.
    public static func virtualHost(host: String, port: UInt32) -> String { "\(host):\(port)" }

    /// Resolves a short host name against a namespace the way Istio does
    /// (`reviews` in `default` → `reviews.default.svc.cluster.local`); names with a dot, `*` and IPs stay.
    public static func fullyQualified(_ host: String, namespace: String, domainSuffix: String = defaultDomainSuffix) -> String {
        Hostname.qualified(host, namespace: namespace, domainSuffix: domainSuffix)
    }
}
