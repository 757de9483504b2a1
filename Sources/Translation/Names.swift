import IstioAPI
import Mesh

/// Istio's resource names, so Istio users recognise what they see in Envoy.
public enum Names {
    public static let blackHoleCluster = "BlackHoleCluster"
    public static let defaultDomainSuffix = "cluster.local"

    /// `outbound|<port>|<subset>|<host>`.
    public static func outboundCluster(port: UInt32, subset: String = "", host: String) -> String {
        "outbound|\(port)|\(subset)|\(host)"
    }

    /// `<bind>_<port>`, e.g. `0.0.0.0_8080`.
    public static func listener(bind: String = "0.0.0.0", port: UInt32) -> String { "\(bind)_\(port)" }

    /// Gateway plaintext HTTP route name: `http.<port>` (+ `.<bind>` when bound).
    public static func gatewayHTTPRoute(port: UInt32, bind: String = "") -> String {
        bind.isEmpty ? "http.\(port)" : "http.\(port).\(bind)"
    }

    /// Virtual host name `<host>:<port>`.
    public static func virtualHost(host: String, port: UInt32) -> String { "\(host):\(port)" }

    /// Resolves a short host name against a namespace the way Istio does
    /// (`reviews` in `default` → `reviews.default.svc.cluster.local`); names with a dot, `*` and IPs stay.
    public static func fullyQualified(_ host: String, namespace: String, domainSuffix: String = defaultDomainSuffix) -> String {
        if host.isEmpty || host == "*" || host.contains(".") || host.contains(":") { return host }
        return "\(host).\(namespace).svc.\(domainSuffix)"
    }
}
