import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias MirrorPolicy = Envoy_Config_Route_V3_RouteAction.RequestMirrorPolicy
typealias CORSPolicy = Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy

/// Mirroring (Istio §4.8) and CORS (§4.9) of an HTTP rule.
extension RouteBuilder {
    /// One mirror policy per `mirror` (with `mirrorPercentage`/`mirrorPercent`) and per `mirrors[]`
    /// entry; 100 % by default, an explicit 0 % drops the entry. The mirrored Host keeps its name
    /// (Istio disables Envoy's `-shadow` suffix by default).
    static func mirrorPolicies(_ rule: Istio_Networking_V1alpha3_HTTPRoute, namespace: String, scope: RouteScope) -> [MirrorPolicy] {
        var mirrors: [(Istio_Networking_V1alpha3_Destination, Double)] = []
        if rule.hasMirror {
            let percentage = rule.hasMirrorPercentage ? rule.mirrorPercentage.value
                : rule.hasMirrorPercent ? Double(rule.mirrorPercent.value) : 100
            mirrors.append((rule.mirror, percentage))
        }
        for mirror in rule.mirrors {
            mirrors.append((mirror.destination, mirror.hasPercentage ? mirror.percentage.value : 100))
        }
        return mirrors.filter { $0.1 > 0 }.map { destination, percentage in
            var policy = MirrorPolicy()
            policy.cluster = clusterName(destination, namespace: namespace, port: scope.port, in: scope.model)
            policy.runtimeFraction.defaultValue = fraction(percentage: percentage, legacy: 0)
            policy.traceSampled = Google_Protobuf_BoolValue(false)
            policy.disableShadowHostSuffixAppend = true
            return policy
        }
    }

    /// The per-route CORS policy (`typed_per_filter_config["envoy.filters.http.cors"]`).
    static func corsPolicy(_ cors: Istio_Networking_V1alpha3_CorsPolicy) -> CORSPolicy {
        var policy = CORSPolicy()
        policy.allowOriginStringMatch = cors.allowOrigins.map(stringMatcher) + cors.allowOrigin.map { origin in
            var matcher = StringMatcher()
            matcher.exact = origin
            return matcher
        }
        policy.allowMethods = cors.allowMethods.joined(separator: ",")
        policy.allowHeaders = cors.allowHeaders.joined(separator: ",")
        policy.exposeHeaders = cors.exposeHeaders.joined(separator: ",")
        if cors.hasMaxAge { policy.maxAge = String(cors.maxAge.seconds) }
        if cors.hasAllowCredentials { policy.allowCredentials = cors.allowCredentials }
        var enabled = Envoy_Config_Core_V3_RuntimeFractionalPercent()
        enabled.defaultValue = fraction(percentage: 100, legacy: 0)
        policy.filterEnabled = enabled
        policy.forwardNotMatchingPreflights = Google_Protobuf_BoolValue(cors.unmatchedPreflights != .ignore)
        return policy
    }
}
