/// Istio host-name rules shared by services, rules and routes.
public enum Hostname {
    public static let defaultDomainSuffix = "cluster.local"

    /// A short name resolved in a namespace (`reviews` in `default` → `reviews.default.svc.cluster.local`);
    /// names with a dot, `*` and IPv6 addresses stay as they are.
    public static func qualified(_ host: String, namespace: String, domainSuffix: String = defaultDomainSuffix) -> String {
        if host.isEmpty || host == "*" || host.utf8.contains(UInt8(ascii: ".")) || host.utf8.contains(UInt8(ascii: ":")) { return host }
        return "\(host).\(namespace).svc.\(domainSuffix)"
    }

    /// `host` is `pattern` or falls under the wildcard `pattern` (`*` matches every host).
    public static func matches(_ host: String, pattern: String) -> Bool {
        if pattern == host || pattern == "*" { return true }
        guard pattern.hasPrefix("*") else { return false }
        return host.hasSuffix(pattern.dropFirst())
    }

    /// Exact names beat wildcards; between wildcards the longer one is more specific.
    public static func isMoreSpecific(_ a: String, than b: String) -> Bool {
        let (aWild, bWild) = (a.hasPrefix("*"), b.hasPrefix("*"))
        if aWild != bWild { return !aWild }
        return a.count > b.count
    }
}
