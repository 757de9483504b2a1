import EnvoyAPI
import IstioAPI

/// Fault injection (Istio §4.7) and percentages.
extension RouteBuilder {
    /// The per-route `HTTPFault` of a rule: a fixed delay and/or an HTTP or gRPC abort, each with its
    /// percentage; nil when there is neither.
    static func fault(_ fault: Istio_Networking_V1alpha3_HTTPFaultInjection) -> Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault? {
        var result = Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()
        var any = false
        if fault.hasDelay, case .fixedDelay(let delay) = fault.delay.httpDelayType {
            var config = Envoy_Extensions_Filters_Common_Fault_V3_FaultDelay()
            config.fixedDelay = delay
            config.percentage = fraction(percentage: fault.delay.hasPercentage ? fault.delay.percentage.value : nil, legacy: fault.delay.percent)
            result.delay = config
            any = true
        }
        if fault.hasAbort {
            var config = Envoy_Extensions_Filters_Http_Fault_V3_FaultAbort()
            switch fault.abort.errorType {
            case .httpStatus(let status): config.httpStatus = UInt32(status)
            case .grpcStatus(let name): config.grpcStatus = grpcStatusCode(name)
            default: break
            }
            config.percentage = fraction(percentage: fault.abort.hasPercentage ? fault.abort.percentage.value : nil, legacy: 0)
            result.abort = config
            any = true
        }
        return any ? result : nil
    }

    /// Istio percentage (double) → per-million fraction; no percentage → 0 (nothing injected).
    static func fraction(percentage: Double?, legacy: Int32) -> Envoy_Type_V3_FractionalPercent {
        var fraction = Envoy_Type_V3_FractionalPercent()
        if let percentage {
            fraction.numerator = UInt32((percentage * 10_000).rounded())
            fraction.denominator = .million
        } else {
            fraction.numerator = UInt32(max(0, legacy))
            fraction.denominator = .hundred
        }
        return fraction
    }

    static let grpcCodes = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                            "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                            "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]

    static func grpcStatusCode(_ name: String) -> UInt32 {
        UInt32(grpcCodes.firstIndex(of: name.uppercased()) ?? 2)
    }
}
