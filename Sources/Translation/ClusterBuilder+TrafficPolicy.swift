import EnvoyAPI
import IstioAPI
import Mesh
import SwiftProtobuf

typealias HTTPProtocolOptions = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions
typealias ConnectionPool = Istio_Networking_V1alpha3_ConnectionPoolSettings
typealias LoadBalancer = Istio_Networking_V1alpha3_LoadBalancerSettings

/// DestinationRule traffic policy → cluster fields (Istio §5.4–5.6).
extension ClusterBuilder {
    /// Istio's circuit-breaker default: effectively unlimited.
    public static let unlimited: UInt32 = 4_294_967_295
    static let httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

    /// Applies an effective (port-resolved, subset-merged) policy to a cluster of `port`.
    static func apply(_ policy: TrafficPolicy, service: Service, port: Service.Port, subset: String = "",
                      certificates: Proxy.WorkloadCertificates? = nil, to cluster: inout Cluster) {
        let pool = policy.connectionPool
        if pool.tcp.hasConnectTimeout { cluster.connectTimeout = pool.tcp.connectTimeout }
        cluster.circuitBreakers = circuitBreakers(pool, retryBudget: policy.hasRetryBudget ? policy.retryBudget : nil)
        if pool.tcp.hasTcpKeepalive { cluster.upstreamConnectionOptions.tcpKeepalive = tcpKeepalive(pool.tcp.tcpKeepalive) }
        if policy.hasLoadBalancer { applyLoadBalancer(policy.loadBalancer, to: &cluster) }
        if policy.hasOutlierDetection {
            cluster.outlierDetection = outlierDetection(policy.outlierDetection)
            var panic = Envoy_Type_V3_Percent()
            panic.value = Double(max(0, policy.outlierDetection.minHealthPercent))
            cluster.commonLbConfig.healthyPanicThreshold = panic
        }
        let tls = policy.hasTls ? upstreamTLS(policy.tls, service: service, port: port, subset: subset, certificates: certificates) : nil
        if let tls { cluster.transportSocket = tls.socket }
        if let options = httpProtocolOptions(pool, port: port, autoSNI: tls?.needsAutoSNI ?? false,
                                             autoSANValidation: tls?.needsAutoSANValidation ?? false) {
            cluster.typedExtensionProtocolOptions[httpProtocolOptionsKey] = Packing.any(options)
        }
    }

    // MARK: - Connection pool (§5.5)

    /// One thresholds entry: Istio's unlimited defaults unless the pool sets a limit (0 = unset).
    static func circuitBreakers(_ pool: ConnectionPool, retryBudget: TrafficPolicy.RetryBudget? = nil) -> Envoy_Config_Cluster_V3_CircuitBreakers {
        func limit(_ value: Int32) -> Google_Protobuf_UInt32Value {
            Google_Protobuf_UInt32Value(value > 0 ? UInt32(value) : unlimited)
        }
        var thresholds = Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds()
        thresholds.maxConnections = limit(pool.tcp.maxConnections)
        thresholds.maxPendingRequests = limit(pool.http.http1MaxPendingRequests)
        thresholds.maxRequests = limit(pool.http.http2MaxRequests)
        thresholds.maxRetries = limit(pool.http.maxRetries)
        if let retryBudget {
            // Istio's defaults: 20 % of active requests, at least 3 concurrent retries.
            var budget = Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds.RetryBudget()
            var percent = Envoy_Type_V3_Percent()
            percent.value = retryBudget.hasPercent ? retryBudget.percent.value : 20
            budget.budgetPercent = percent
            budget.minRetryConcurrency = Google_Protobuf_UInt32Value(retryBudget.minRetryConcurrency > 0 ? retryBudget.minRetryConcurrency : 3)
            thresholds.retryBudget = budget
        }
        var breakers = Envoy_Config_Cluster_V3_CircuitBreakers()
        breakers.thresholds = [thresholds]
        return breakers
    }

    static func tcpKeepalive(_ keepalive: ConnectionPool.TCPSettings.TcpKeepalive) -> Envoy_Config_Core_V3_TcpKeepalive {
        var result = Envoy_Config_Core_V3_TcpKeepalive()
        if keepalive.probes > 0 { result.keepaliveProbes = Google_Protobuf_UInt32Value(keepalive.probes) }
        if keepalive.hasTime { result.keepaliveTime = Google_Protobuf_UInt32Value(UInt32(keepalive.time.seconds)) }
        if keepalive.hasInterval { result.keepaliveInterval = Google_Protobuf_UInt32Value(UInt32(keepalive.interval.seconds)) }
        return result
    }

    /// `HttpProtocolOptions` when anything in it differs from Envoy's defaults (HTTP/1.1 upstream),
    /// else nil. HTTP2/GRPC ports and `h2UpgradePolicy: UPGRADE` use HTTP/2; `useClientProtocol`
    /// follows the downstream protocol.
    static func httpProtocolOptions(_ pool: ConnectionPool, port: Service.Port, autoSNI: Bool, autoSANValidation: Bool) -> HTTPProtocolOptions? {
        let http = pool.http
        var common = Envoy_Config_Core_V3_HttpProtocolOptions()
        if http.hasIdleTimeout { common.idleTimeout = http.idleTimeout } else if pool.tcp.hasIdleTimeout { common.idleTimeout = pool.tcp.idleTimeout }
        if http.maxRequestsPerConnection > 0 { common.maxRequestsPerConnection = Google_Protobuf_UInt32Value(UInt32(http.maxRequestsPerConnection)) }
        if pool.tcp.hasMaxConnectionDuration { common.maxConnectionDuration = pool.tcp.maxConnectionDuration }
        let usesHTTP2 = ["HTTP2", "GRPC", "GRPC-WEB"].contains(port.protocol.uppercased()) || http.h2UpgradePolicy == .upgrade
        let needed = common != Envoy_Config_Core_V3_HttpProtocolOptions() || usesHTTP2 || http.useClientProtocol || autoSNI
        guard needed else { return nil }
        var options = HTTPProtocolOptions()
        if common != Envoy_Config_Core_V3_HttpProtocolOptions() { options.commonHTTPProtocolOptions = common }
        if autoSNI {
            options.upstreamHTTPProtocolOptions.autoSni = true
            options.upstreamHTTPProtocolOptions.autoSanValidation = autoSANValidation
        }
        if http.useClientProtocol {
            options.useDownstreamProtocolConfig = HTTPProtocolOptions.UseDownstreamHttpConfig()
        } else {
            var explicit = HTTPProtocolOptions.ExplicitHttpConfig()
            if usesHTTP2 {
                var http2 = Envoy_Config_Core_V3_Http2ProtocolOptions()
                if http.maxConcurrentStreams > 0 { http2.maxConcurrentStreams = Google_Protobuf_UInt32Value(UInt32(http.maxConcurrentStreams)) }
                if http.hasHTTP2KeepAlive {
                    var keepalive = Envoy_Config_Core_V3_KeepaliveSettings()
                    keepalive.interval = http.http2KeepAlive.interval
                    keepalive.timeout = http.http2KeepAlive.timeout
                    http2.connectionKeepalive = keepalive
                }
                explicit.http2ProtocolOptions = http2
            } else {
                explicit.httpProtocolOptions = Envoy_Config_Core_V3_Http1ProtocolOptions()
            }
            options.explicitHTTPConfig = explicit
        }
        return options
    }

    // MARK: - Load balancer (§5.4)

    static func applyLoadBalancer(_ settings: LoadBalancer, to cluster: inout Cluster) {
        switch settings.lbPolicy {
        case .simple(let simple):
            switch simple {
            case .roundRobin: cluster.lbPolicy = .roundRobin
            case .random: cluster.lbPolicy = .random
            case .passthrough: makeOriginalDestination(&cluster)
            default: cluster.lbPolicy = .leastRequest
            }
        case .consistentHash(let hash):
            if case .maglev(let maglev) = hash.hashAlgorithm {
                cluster.lbPolicy = .maglev
                if maglev.tableSize > 0 { cluster.maglevLbConfig.tableSize = Google_Protobuf_UInt64Value(maglev.tableSize) }
            } else {
                cluster.lbPolicy = .ringHash
                var size = hash.minimumRingSize
                if case .ringHash(let ring) = hash.hashAlgorithm, ring.minimumRingSize > 0 { size = ring.minimumRingSize }
                cluster.ringHashLbConfig.minimumRingSize = Google_Protobuf_UInt64Value(size > 0 ? size : 1024)
            }
        case nil:
            break
        }
        if settings.hasLocalityLbSetting { applyLocalitySetting(settings.localityLbSetting, to: &cluster) }
        if let slowStart = slowStart(settings) {
            if cluster.lbPolicy == .roundRobin { cluster.roundRobinLbConfig.slowStartConfig = slowStart }
            if cluster.lbPolicy == .leastRequest { cluster.leastRequestLbConfig.slowStartConfig = slowStart }
        }
    }

    /// `warmup` (or the older `warmupDurationSecs`): aggression 1.0 and a 10 % minimum weight unless set.
    static func slowStart(_ settings: LoadBalancer) -> Envoy_Config_Cluster_V3_Cluster.SlowStartConfig? {
        guard settings.hasWarmup || settings.hasWarmupDurationSecs else { return nil }
        let warmup = settings.warmup
        var config = Envoy_Config_Cluster_V3_Cluster.SlowStartConfig()
        config.slowStartWindow = settings.hasWarmup ? warmup.duration : settings.warmupDurationSecs
        var aggression = Envoy_Config_Core_V3_RuntimeDouble()
        aggression.defaultValue = warmup.hasAggression ? warmup.aggression.value : 1.0
        aggression.runtimeKey = "upstream.slow_start.aggression"
        config.aggression = aggression
        var minimum = Envoy_Type_V3_Percent()
        minimum.value = warmup.hasMinimumPercent ? warmup.minimumPercent.value : 10
        config.minWeightPercent = minimum
        return config
    }

    /// `simple: PASSTHROUGH`: the original destination, no endpoints.
    static func makeOriginalDestination(_ cluster: inout Cluster) {
        cluster.type = .originalDst
        cluster.lbPolicy = .clusterProvided
        cluster.clearEdsClusterConfig()
        cluster.clearLoadAssignment()
    }

    /// Locality-weighted load balancing when `distribute` weights are given (the weights themselves
    /// are rewritten in the ClusterLoadAssignment).
    static func applyLocalitySetting(_ setting: Istio_Networking_V1alpha3_LocalityLoadBalancerSetting, to cluster: inout Cluster) {
        if setting.hasEnabled, !setting.enabled.value { return }
        if !setting.distribute.isEmpty {
            cluster.commonLbConfig.localityWeightedLbConfig = Envoy_Config_Cluster_V3_Cluster.CommonLbConfig.LocalityWeightedLbConfig()
        }
    }

    // MARK: - Outlier detection (§5.6)

    static func outlierDetection(_ settings: Istio_Networking_V1alpha3_OutlierDetection) -> Envoy_Config_Cluster_V3_OutlierDetection {
        var result = Envoy_Config_Cluster_V3_OutlierDetection()
        result.enforcingSuccessRate = Google_Protobuf_UInt32Value(0)
        if settings.hasConsecutive5XxErrors {
            let count = settings.consecutive5XxErrors.value
            result.consecutive5Xx = Google_Protobuf_UInt32Value(count)
            result.enforcingConsecutive5Xx = Google_Protobuf_UInt32Value(count > 0 ? 100 : 0)
        }
        if settings.hasConsecutiveGatewayErrors {
            let count = settings.consecutiveGatewayErrors.value
            result.consecutiveGatewayFailure = Google_Protobuf_UInt32Value(count)
            result.enforcingConsecutiveGatewayFailure = Google_Protobuf_UInt32Value(count > 0 ? 100 : 0)
        }
        if settings.hasInterval { result.interval = settings.interval }
        if settings.hasBaseEjectionTime { result.baseEjectionTime = settings.baseEjectionTime }
        if settings.maxEjectionPercent > 0 { result.maxEjectionPercent = Google_Protobuf_UInt32Value(UInt32(settings.maxEjectionPercent)) }
        if settings.splitExternalLocalOriginErrors {
            result.splitExternalLocalOriginErrors = true
            if settings.hasConsecutiveLocalOriginFailures {
                result.consecutiveLocalOriginFailure = settings.consecutiveLocalOriginFailures
                result.enforcingConsecutiveLocalOriginFailure = Google_Protobuf_UInt32Value(100)
            }
        }
        return result
    }
}
