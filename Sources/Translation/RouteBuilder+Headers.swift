import EnvoyAPI
import IstioAPI

/// Header manipulation (Istio §4.10): set/add/remove on requests and responses, host rewrites.
extension RouteBuilder {
    struct HeaderOps {
        var requestAdd: [Envoy_Config_Core_V3_HeaderValueOption] = []
        var requestRemove: [String] = []
        var responseAdd: [Envoy_Config_Core_V3_HeaderValueOption] = []
        var responseRemove: [String] = []
        var hostRewrite: String?
    }

    static func headerOperations(_ headers: Istio_Networking_V1alpha3_Headers) -> HeaderOps {
        var ops = HeaderOps()
        func options(_ operations: Istio_Networking_V1alpha3_Headers.HeaderOperations, host: inout String?) -> [Envoy_Config_Core_V3_HeaderValueOption] {
            var result: [Envoy_Config_Core_V3_HeaderValueOption] = []
            for (action, map) in [(Envoy_Config_Core_V3_HeaderValueOption.HeaderAppendAction.overwriteIfExistsOrAdd, operations.set),
                                  (.appendIfExistsOrAdd, operations.add)] {
                for key in map.keys.sorted() {
                    let lower = key.lowercased()
                    if lower == ":authority" || lower == "host" {
                        if host == nil || action == .overwriteIfExistsOrAdd { host = map[key] }
                        continue
                    }
                    if lower.hasPrefix(":") { continue }
                    var option = Envoy_Config_Core_V3_HeaderValueOption()
                    option.header.key = key
                    option.header.value = map[key]!
                    option.appendAction = action
                    result.append(option)
                }
            }
            return result
        }
        var host: String?
        ops.requestAdd = options(headers.request, host: &host)
        ops.hostRewrite = host
        var ignored: String?
        ops.responseAdd = options(headers.response, host: &ignored)
        ops.requestRemove = headers.request.remove.filter { !$0.hasPrefix(":") && $0.lowercased() != "host" }.sorted()
        ops.responseRemove = headers.response.remove.filter { !$0.hasPrefix(":") && $0.lowercased() != "host" }.sorted()
        return ops
    }

    static func applyHeaders(_ headers: Istio_Networking_V1alpha3_Headers, to route: inout Route) {
        let ops = headerOperations(headers)
        route.requestHeadersToAdd += ops.requestAdd
        route.requestHeadersToRemove += ops.requestRemove
        route.responseHeadersToAdd += ops.responseAdd
        route.responseHeadersToRemove += ops.responseRemove
        if let host = ops.hostRewrite, case .route(var action)? = route.action, action.hostRewriteSpecifier == nil {
            action.hostRewriteLiteral = host
            route.route = action
        }
    }
}
