import IstioAPI
import Mesh
import Snapshot

/// A problem translation worked around: which resource and field, why, and how to fix it.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public var resource: ConfigKey
    /// Dotted path of the offending field, e.g. `spec.trafficPolicy.tls.mode`.
    public var field: String
    public var problem: String
    public var fix: String

    public init(resource: ConfigKey, field: String, problem: String, fix: String) {
        self.resource = resource
        self.field = field
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(resource) \(field): \(problem); \(fix)" }
}

/// Pure checks of the config one proxy receives, for what SwiftPilot cannot translate faithfully.
public enum Diagnostics {
    /// - Parameter servers: the router's gateway servers, when the caller has them already.
    /// - Parameter memo: where the problems of VirtualServices found before are kept.
    public static func problems(for proxy: Proxy, in model: MeshModel, servers: GatewayServers? = nil, memo: RouteMemo? = nil) -> [Diagnostic] {
        destinationRuleProblems(for: proxy, in: model) + routingProblems(for: proxy, in: model, servers: servers, memo: memo)
    }

    /// The problems of VirtualServices and Gateways: all that a routing-only change can alter
    /// (DestinationRule problems stay as they were).
    public static func routingProblems(for proxy: Proxy, in model: MeshModel, servers: GatewayServers? = nil, memo: RouteMemo? = nil) -> [Diagnostic] {
        var found = virtualServiceProblems(in: model, memo: memo)
        if proxy.kind == .router { found += gatewayProblems(for: proxy, in: model, servers: servers ?? GatewayServers(for: proxy, in: model)) }
        return found
    }

    /// Gateway servers that get no filter chain.
    static func gatewayProblems(for proxy: Proxy, in model: MeshModel, servers served: GatewayServers) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for resource in model.gateways(for: proxy) {
            guard case .gateway(let gateway) = resource.spec else { continue }
            for (index, server) in gateway.servers.enumerated() {
                let field = "spec.servers[\(index)]"
                guard let kind = GatewayServers.Kind.of(server) else {
                    found.append(Diagnostic(resource: resource.key, field: "\(field).tls.mode",
                                            problem: "protocol \(server.port.protocol) with TLS mode \(server.tls.mode) is not supported by SwiftPilot; the server is ignored",
                                            fix: "use HTTP, HTTPS or TLS with SIMPLE, MUTUAL, OPTIONAL_MUTUAL or PASSTHROUGH, or TCP"))
                    continue
                }
                let entries = served.byAddress[GatewayServers.Address(bind: server.bind, port: server.port.number)] ?? []
                if !entries.contains(where: { $0.gateway == resource.key && $0.server == server }) {
                    found.append(Diagnostic(resource: resource.key, field: "\(field).port",
                                            problem: "port \(server.port.number) is already used by a server of another kind; this server is ignored",
                                            fix: "move the server to its own port"))
                } else if kind == .https || kind == .terminatedTCP, ListenerBuilder.downstreamTLS(server.tls, alpn: []) == nil {
                    found.append(Diagnostic(resource: resource.key, field: "\(field).tls",
                                            problem: "TLS termination needs serverCertificate and privateKey files (and caCertificates for MUTUAL); credentialName is not supported; the server is ignored",
                                            fix: "set the certificate file paths"))
                }
            }
        }
        return found
    }

    /// TLS settings SwiftPilot cannot honour: ISTIO_MUTUAL for a proxy that names no certificate
    /// files (the cluster is not sent), MUTUAL without files, and `credentialName` (no SDS secrets).
    static func destinationRuleProblems(for proxy: Proxy, in model: MeshModel) -> [Diagnostic] {
        var found: [Diagnostic] = []
        var reported = Set<String>()
        for service in model.services(visibleTo: proxy.namespace) {
            guard let (key, rule) = model.destinationRuleResource(host: service.hostname, proxyNamespace: proxy.namespace,
                                                                   serviceNamespace: service.namespace) else { continue }
            for port in service.ports {
                for subset in [""] + rule.subsets.map(\.name) {
                    let policy = rule.trafficPolicy(port: port.number, subset: subset)
                    var problems = policy.hasTls ? [tlsProblem(policy.tls, resource: key, proxy: proxy)].compactMap { $0 } : []
                    problems += ignoredPolicyProblems(policy, resource: key)
                    for problem in problems where reported.insert(problem.description).inserted { found.append(problem) }
                }
            }
        }
        return found
    }

    /// Traffic-policy fields SwiftPilot does not translate.
    static func ignoredPolicyProblems(_ policy: TrafficPolicy, resource: ConfigKey) -> [Diagnostic] {
        var found: [Diagnostic] = []
        let ignored: [(Bool, String)] = [
            (!policy.outlierDetection.outlierDetectionHTTPErrorCodes.isEmpty, "outlierDetection.outlierDetectionHttpErrorCodes"),
            (policy.hasTunnel, "tunnel"),
            (policy.hasProxyProtocol, "proxyProtocol"),
        ]
        for (present, name) in ignored where present {
            found.append(Diagnostic(resource: resource, field: "spec.trafficPolicy.\(name)",
                                    problem: "not supported by SwiftPilot; ignored", fix: "remove the field"))
        }
        let locality = policy.loadBalancer.localityLbSetting
        let failover: [(Bool, String)] = [(!locality.failover.isEmpty, "failover"), (!locality.failoverPriority.isEmpty, "failoverPriority")]
        for (present, name) in failover where present && !policy.hasOutlierDetection && locality.distribute.isEmpty {
            found.append(Diagnostic(resource: resource, field: "spec.trafficPolicy.loadBalancer.localityLbSetting.\(name)",
                                    problem: "has no effect without outlierDetection (Envoy only fails over from ejected endpoints); ignored",
                                    fix: "add trafficPolicy.outlierDetection"))
        }
        return found
    }

    static func tlsProblem(_ tls: ClientTLSSettings, resource: ConfigKey, proxy: Proxy) -> Diagnostic? {
        let field = "spec.trafficPolicy.tls"
        switch tls.mode {
        case .istioMutual where proxy.workloadCertificates == nil && !proxy.isProxylessGRPC:
            return Diagnostic(resource: resource, field: "\(field).mode",
                              problem: "ISTIO_MUTUAL needs the proxy's own workload certificates (SwiftPilot is not a CA) and the proxy's node names none; the cluster is not sent, so requests to it fail",
                              fix: "give the proxy node metadata TLS_CLIENT_CERT_CHAIN, TLS_CLIENT_KEY and TLS_CLIENT_ROOT_CERT (certificate files), or use MUTUAL with certificate files")
        case .mutual where tls.clientCertificate.isEmpty || tls.privateKey.isEmpty:
            return Diagnostic(resource: resource, field: field,
                              problem: "MUTUAL without clientCertificate and privateKey files; the cluster is sent without TLS",
                              fix: "set clientCertificate and privateKey to PEM files readable by Envoy")
        case .simple, .mutual:
            guard !tls.credentialName.isEmpty else { return nil }
            return Diagnostic(resource: resource, field: "\(field).credentialName",
                              problem: "credentialName needs an SDS secret store, which SwiftPilot does not have; it is ignored",
                              fix: "use caCertificates (and for MUTUAL clientCertificate/privateKey) file paths")
        default:
            return nil
        }
    }

    /// HTTP rules that cannot become routes, or lose something on the way.
    static func virtualServiceProblems(in model: MeshModel, memo: RouteMemo? = nil) -> [Diagnostic] {
        let virtualServices = model.virtualServices
        // Those found before, when the VirtualServices are the same ones in the same order.
        let known = memo?.virtualServiceProblems.flatMap { known in
            RouteMemo.sameVirtualServicesInOrder(known.virtualServices, virtualServices) ? known : nil
        }
        var problems: [[Diagnostic]] = []
        problems.reserveCapacity(virtualServices.count)
        for (position, resource) in virtualServices.enumerated() {
            guard case .virtualService(let service) = resource.spec else {
                problems.append([])
                continue
            }
            // A delegating rule's problem depends on the other VirtualServices.
            if let known, !RouteBuilder.hasDelegates(service), known.virtualServices[position].hasSameContent(as: resource) {
                problems.append(known.problems[position])
                continue
            }
            problems.append(service.http.enumerated().flatMap { index, rule in
                ruleProblems(rule, field: "spec.http[\(index)]", resource: resource, in: model)
            })
        }
        memo?.virtualServiceProblems = RouteMemo.Problems(virtualServices: virtualServices, problems: problems)
        return problems.flatMap { $0 }
    }

    static func ruleProblems(_ rule: Istio_Networking_V1alpha3_HTTPRoute, field: @autoclosure () -> String, resource: ConfigResource,
                             in model: MeshModel) -> [Diagnostic] {
        var found: [Diagnostic] = []
        func report(_ suffix: String, _ problem: String, _ fix: String) {
            found.append(Diagnostic(resource: resource.key, field: field() + suffix, problem: problem, fix: fix))
        }
        if rule.hasDelegate {
            if RouteBuilder.delegateService(rule.delegate, rootNamespace: resource.key.namespace, in: model) == nil {
                report(".delegate", "no VirtualService \(rule.delegate.namespace.isEmpty ? resource.key.namespace : rule.delegate.namespace)/\(rule.delegate.name) without hosts is exported to \(resource.key.namespace); the rule is dropped",
                       "create the delegate (hosts empty) or export it to the root's namespace")
            }
        } else if !RouteBuilder.hasAction(rule) {
            report("", "the rule has no redirect, directResponse or destination with weight above 0; it is not emitted",
                   "give at least one destination a positive weight")
        }
        if case .exponentialDelay? = rule.fault.delay.httpDelayType {
            report(".fault.delay.exponentialDelay", "exponential delays are not supported by Envoy's fault filter; the delay is dropped",
                   "use fixedDelay")
        }
        if rule.retries.hasRetryRemoteLocalities, rule.retries.retryRemoteLocalities.value {
            report(".retries.retryRemoteLocalities", "retrying in other localities is not supported by SwiftPilot; ignored",
                   "remove the field")
        }
        return found
    }
}
