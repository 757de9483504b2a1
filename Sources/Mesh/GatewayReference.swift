/// Resolves a VirtualService `gateways` entry to `namespace/name`, as Istio does:
/// `name` → the VirtualService's namespace, `ns/name` stays, `./name` → the VirtualService's
/// namespace, the legacy `name.ns.svc…` form → `ns/name`; `mesh` stays `mesh`.
public func resolveGatewayReference(_ reference: String, namespace: String) -> String {
    if reference == "mesh" { return reference }
    if reference.hasPrefix("./") { return "\(namespace)/\(reference.dropFirst(2))" }
    if reference.utf8.contains(UInt8(ascii: "/")) { return reference }
    let parts = reference.split(separator: ".")
    if parts.count >= 2 { return "\(parts[1])/\(parts[0])" }
    return "\(namespace)/\(reference)"
}
