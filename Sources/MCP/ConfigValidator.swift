import Foundation
import IstioAPI
import Snapshot

/// Istio's semantic validation, per resource: what Istio's own validation would refuse
/// (hosts, ports, weights, regexes, subsets, …). Each problem names the field; a resource with
/// any problem is dropped, the rest of the collection applies.
public enum ConfigValidator {
    /// The problems of one resource (empty when valid).
    public static func problems(of resource: ConfigResource) -> [ConfigDecodingError] {
        var check = Check(location: resource.sourceLocation ?? resource.origin, resource: "\(resource.key)")
        switch resource.spec {
        case .virtualService(let spec): check.virtualService(spec)
        case .destinationRule(let spec): check.destinationRule(spec)
        case .gateway(let spec): check.gateway(spec)
        case .serviceEntry(let spec): check.serviceEntry(spec)
        case .workloadEntry(let spec): check.workloadEntry(spec, field: "spec")
        case .peerAuthentication(let spec): check.peerAuthentication(spec)
        case .workloadGroup, .sidecar, .envoyFilter: break
        }
        return check.problems
    }

    /// Splits resources into the valid ones and the problems of the others.
    public static func partition(_ resources: [ConfigResource]) -> (valid: [ConfigResource], problems: [ConfigDecodingError]) {
        var valid: [ConfigResource] = []
        var problems: [ConfigDecodingError] = []
        for resource in resources {
            let found = self.problems(of: resource)
            if found.isEmpty { valid.append(resource) } else { problems += found }
        }
        return (valid, problems)
    }
}

private struct Check {
    var location: String
    var resource: String
    var problems: [ConfigDecodingError] = []

    mutating func fail(_ field: String, _ reason: String) {
        problems.append(ConfigDecodingError(location: location, resource: resource, field: field, reason: reason))
    }

    // MARK: PeerAuthentication

    /// Istio's rules: per-port settings need a selector, and name real ports.
    mutating func peerAuthentication(_ spec: PeerAuthentication) {
        if !spec.portLevelMtls.isEmpty, spec.selector.matchLabels.isEmpty {
            fail("spec.portLevelMtls", "applies only with a workload selector (spec.selector.matchLabels)")
        }
        for port in spec.portLevelMtls.keys.sorted() where !(1...65535).contains(port) {
            fail("spec.portLevelMtls[\(port)]", "\(port) is not a valid port number")
        }
    }

    // MARK: Shared rules

    mutating func host(_ host: String, field: String, allowShort: Bool = true) {
        if host.isEmpty { return fail(field, "must not be empty") }
        if host == "*" { return }
        var name = host
        if name.hasPrefix("*.") { name.removeFirst(2) }
        if name.contains("*") { return fail(field, "'\(host)': a wildcard is allowed only as the leftmost label ('*.example.com')") }
        if name.contains("/") || name.contains(" ") || name.contains(":") {
            return fail(field, "'\(host)' is not a valid host name")
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.contains(where: { $0.isEmpty || $0.count > 63 }) || name.count > 253 {
            return fail(field, "'\(host)' is not a valid DNS name")
        }
        if !allowShort, labels.count < 2, !host.hasPrefix("*") { fail(field, "'\(host)' must be a fully qualified name") }
    }

    mutating func port(_ number: UInt32, field: String) {
        if number == 0 || number > 65535 { fail(field, "port \(number) is outside 1-65535") }
    }

    mutating func regex(_ pattern: String, field: String) {
        do {
            _ = try NSRegularExpression(pattern: pattern)
        } catch {
            fail(field, "'\(pattern)' is not a valid regular expression")
        }
    }

    mutating func stringMatch(_ match: Istio_Networking_V1alpha3_StringMatch, field: String) {
        if case .regex(let pattern)? = match.matchType, pattern != "*" { regex(pattern, field: "\(field).regex") }
    }

    mutating func duration(_ duration: SwiftProtobuf_Duration, field: String) {
        if duration.seconds < 0 || duration.nanos < 0 { fail(field, "must not be negative") }
    }

    mutating func percent(_ value: Double, field: String) {
        if value < 0 || value > 100 { fail(field, "\(value) is outside 0-100") }
    }

    // MARK: VirtualService

    mutating func virtualService(_ spec: VirtualService) {
        let isDelegate = spec.hosts.isEmpty
        if isDelegate, !spec.gateways.isEmpty { fail("spec.hosts", "must not be empty (only delegate VirtualServices, which name no gateways, have no hosts)") }
        for (index, name) in spec.hosts.enumerated() { host(name, field: "spec.hosts[\(index)]") }
        if spec.http.isEmpty, spec.tcp.isEmpty, spec.tls.isEmpty { fail("spec", "needs at least one http, tcp or tls route") }
        for (index, rule) in spec.http.enumerated() { httpRoute(rule, field: "spec.http[\(index)]") }
        for (index, rule) in spec.tcp.enumerated() { destinations(rule.route.map { ($0.destination, $0.weight) }, field: "spec.tcp[\(index)].route") }
        for (index, rule) in spec.tls.enumerated() {
            destinations(rule.route.map { ($0.destination, $0.weight) }, field: "spec.tls[\(index)].route")
            if rule.match.isEmpty { fail("spec.tls[\(index)].match", "a TLS route needs at least one match") }
            for (m, match) in rule.match.enumerated() where match.sniHosts.isEmpty {
                fail("spec.tls[\(index)].match[\(m)].sniHosts", "must not be empty")
            }
        }
    }

    mutating func httpRoute(_ rule: Istio_Networking_V1alpha3_HTTPRoute, field: String) {
        let actions = [!rule.route.isEmpty, rule.hasRedirect, rule.hasDirectResponse, rule.hasDelegate].filter { $0 }.count
        if actions == 0 { fail(field, "needs a route, redirect, directResponse or delegate") }
        if rule.hasRedirect, !rule.route.isEmpty { fail("\(field).redirect", "cannot be combined with route") }
        if rule.hasDirectResponse, !rule.route.isEmpty { fail("\(field).directResponse", "cannot be combined with route") }
        if rule.hasDelegate, !rule.route.isEmpty || rule.hasRedirect { fail("\(field).delegate", "cannot be combined with route or redirect") }
        if rule.hasRedirect, rule.hasDirectResponse { fail("\(field).redirect", "cannot be combined with directResponse") }
        if rule.hasRedirect, rule.redirect.redirectCode != 0, ![301, 302, 303, 307, 308].contains(rule.redirect.redirectCode) {
            fail("\(field).redirect.redirectCode", "\(rule.redirect.redirectCode) is not a redirect status (301, 302, 303, 307, 308)")
        }
        if rule.hasDirectResponse, !(200...599).contains(rule.directResponse.status) {
            fail("\(field).directResponse.status", "\(rule.directResponse.status) is not an HTTP status")
        }
        for (index, match) in rule.match.enumerated() {
            let path = "\(field).match[\(index)]"
            if match.hasUri { stringMatch(match.uri, field: "\(path).uri") }
            for (name, value) in match.headers {
                if name.isEmpty || name != name.lowercased() { fail("\(path).headers.\(name)", "header names must be non-empty lower case") }
                stringMatch(value, field: "\(path).headers.\(name)")
            }
            for (name, value) in match.withoutHeaders { stringMatch(value, field: "\(path).withoutHeaders.\(name)") }
            for (name, value) in match.queryParams { stringMatch(value, field: "\(path).queryParams.\(name)") }
            if match.port != 0 { port(match.port, field: "\(path).port") }
        }
        destinations(rule.route.map { ($0.destination, $0.weight) }, field: "\(field).route")
        if rule.hasTimeout { duration(rule.timeout, field: "\(field).timeout") }
        if rule.hasRetries {
            if rule.retries.attempts < 0 { fail("\(field).retries.attempts", "must not be negative") }
            if rule.retries.hasPerTryTimeout { duration(rule.retries.perTryTimeout, field: "\(field).retries.perTryTimeout") }
        }
        if rule.hasFault {
            if rule.fault.hasDelay, rule.fault.delay.hasPercentage { percent(rule.fault.delay.percentage.value, field: "\(field).fault.delay.percentage") }
            if rule.fault.hasAbort {
                if rule.fault.abort.hasPercentage { percent(rule.fault.abort.percentage.value, field: "\(field).fault.abort.percentage") }
                if case .httpStatus(let status)? = rule.fault.abort.errorType, !(200...599).contains(status) {
                    fail("\(field).fault.abort.httpStatus", "\(status) is not an HTTP status")
                }
            }
        }
        if rule.hasMirrorPercentage { percent(rule.mirrorPercentage.value, field: "\(field).mirrorPercentage") }
        if rule.hasRewrite, rule.rewrite.hasUriRegexRewrite { regex(rule.rewrite.uriRegexRewrite.match, field: "\(field).rewrite.uriRegexRewrite.match") }
    }

    mutating func destinations(_ list: [(Istio_Networking_V1alpha3_Destination, Int32)], field: String) {
        for (index, (destination, weight)) in list.enumerated() {
            host(destination.host, field: "\(field)[\(index)].destination.host")
            if destination.port.number != 0 { port(destination.port.number, field: "\(field)[\(index)].destination.port.number") }
            if weight < 0 { fail("\(field)[\(index)].weight", "must not be negative") }
        }
        if list.count > 1, list.allSatisfy({ $0.1 == 0 }) { fail(field, "weights of several destinations must not all be 0") }
    }

    // MARK: DestinationRule

    mutating func destinationRule(_ spec: DestinationRule) {
        host(spec.host, field: "spec.host")
        var names = Set<String>()
        for (index, subset) in spec.subsets.enumerated() {
            if subset.name.isEmpty { fail("spec.subsets[\(index)].name", "must not be empty") }
            if !names.insert(subset.name).inserted { fail("spec.subsets[\(index)].name", "'\(subset.name)' is defined twice") }
            if subset.name.contains("|") { fail("spec.subsets[\(index)].name", "must not contain '|' (it separates cluster name parts)") }
            if subset.hasTrafficPolicy { trafficPolicy(subset.trafficPolicy, field: "spec.subsets[\(index)].trafficPolicy") }
        }
        if spec.hasTrafficPolicy { trafficPolicy(spec.trafficPolicy, field: "spec.trafficPolicy") }
    }

    mutating func trafficPolicy(_ policy: Istio_Networking_V1alpha3_TrafficPolicy, field: String) {
        if policy.hasLoadBalancer { localityLbSetting(policy.loadBalancer.localityLbSetting, field: "\(field).loadBalancer.localityLbSetting") }
        for (index, entry) in policy.portLevelSettings.enumerated() where entry.hasLoadBalancer {
            localityLbSetting(entry.loadBalancer.localityLbSetting, field: "\(field).portLevelSettings[\(index)].loadBalancer.localityLbSetting")
        }
    }

    /// `failover` names regions (`from` ≠ `to`, no wildcards); `distribute` excludes the failover fields.
    mutating func localityLbSetting(_ setting: Istio_Networking_V1alpha3_LocalityLoadBalancerSetting, field: String) {
        if !setting.distribute.isEmpty, !setting.failover.isEmpty || !setting.failoverPriority.isEmpty {
            fail(field, "'distribute' cannot be combined with 'failover' or 'failoverPriority'")
        }
        for (index, failover) in setting.failover.enumerated() {
            for (name, region) in [("from", failover.from), ("to", failover.to)] {
                if region.isEmpty { fail("\(field).failover[\(index)].\(name)", "must not be empty") }
                if region.contains("/") || region.contains("*") {
                    fail("\(field).failover[\(index)].\(name)", "'\(region)' must be a region name (no '/' or '*')")
                }
            }
            if !failover.from.isEmpty, failover.from == failover.to {
                fail("\(field).failover[\(index)].to", "'\(failover.to)' must differ from 'from'")
            }
        }
        for (index, label) in setting.failoverPriority.enumerated() {
            let parts = label.split(separator: "=", omittingEmptySubsequences: false)
            if parts.count > 2 || parts[0].isEmpty {
                fail("\(field).failoverPriority[\(index)]", "'\(label)' must be a label key or 'key=value'")
            }
        }
    }

    // MARK: Gateway

    mutating func gateway(_ spec: Gateway) {
        if spec.servers.isEmpty { fail("spec.servers", "must not be empty") }
        let protocols: Set<String> = ["HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO", "REDIS", "MYSQL"]
        for (index, server) in spec.servers.enumerated() {
            let field = "spec.servers[\(index)]"
            port(server.port.number, field: "\(field).port.number")
            if !protocols.contains(server.port.protocol.uppercased()) {
                fail("\(field).port.protocol", "'\(server.port.protocol)' is not one of \(protocols.sorted().joined(separator: ", "))")
            }
            if server.hosts.isEmpty { fail("\(field).hosts", "must not be empty") }
            for (h, entry) in server.hosts.enumerated() {
                let name = entry.split(separator: "/", maxSplits: 1).last.map(String.init) ?? entry
                host(name, field: "\(field).hosts[\(h)]")
            }
            let proto = server.port.protocol.uppercased()
            if proto == "HTTPS" || proto == "TLS", !server.hasTls { fail("\(field).tls", "is required for \(proto) servers") }
        }
    }

    // MARK: ServiceEntry / WorkloadEntry

    mutating func serviceEntry(_ spec: ServiceEntry) {
        if spec.hosts.isEmpty { fail("spec.hosts", "must not be empty") }
        for (index, name) in spec.hosts.enumerated() { host(name, field: "spec.hosts[\(index)]") }
        if spec.ports.isEmpty { fail("spec.ports", "must not be empty") }
        var numbers = Set<UInt32>()
        var names = Set<String>()
        for (index, servicePort) in spec.ports.enumerated() {
            port(servicePort.number, field: "spec.ports[\(index)].number")
            if servicePort.targetPort != 0 { port(servicePort.targetPort, field: "spec.ports[\(index)].targetPort") }
            if !numbers.insert(servicePort.number).inserted { fail("spec.ports[\(index)].number", "\(servicePort.number) is used twice") }
            if !servicePort.name.isEmpty, !names.insert(servicePort.name).inserted { fail("spec.ports[\(index)].name", "'\(servicePort.name)' is used twice") }
        }
        if !spec.endpoints.isEmpty, spec.hasWorkloadSelector { fail("spec.workloadSelector", "cannot be combined with endpoints") }
        switch spec.resolution {
        case .none:
            if !spec.endpoints.isEmpty { fail("spec.endpoints", "are not allowed with resolution NONE") }
        case .static:
            for (index, endpoint) in spec.endpoints.enumerated() where !isIP(endpoint.address) && !endpoint.address.hasPrefix("unix://") {
                fail("spec.endpoints[\(index)].address", "'\(endpoint.address)' must be an IP address with resolution STATIC")
            }
        case .dns, .dnsRoundRobin:
            if spec.endpoints.isEmpty, !spec.hasWorkloadSelector {
                for (index, name) in spec.hosts.enumerated() where name.hasPrefix("*") {
                    fail("spec.hosts[\(index)]", "'\(name)': wildcard hosts need endpoints with resolution DNS")
                }
            }
            if spec.resolution == .dnsRoundRobin, spec.endpoints.count > 1 { fail("spec.endpoints", "DNS_ROUND_ROBIN allows at most one endpoint") }
        default:
            break
        }
        for (index, endpoint) in spec.endpoints.enumerated() { workloadEntry(endpoint, field: "spec.endpoints[\(index)]") }
    }

    mutating func workloadEntry(_ entry: WorkloadEntry, field: String) {
        if entry.address.isEmpty, entry.network.isEmpty { fail("\(field).address", "must not be empty") }
        for (name, number) in entry.ports { port(number, field: "\(field).ports.\(name)") }
    }

    func isIP(_ address: String) -> Bool {
        var ipv4 = in_addr()
        var ipv6 = in6_addr()
        return inet_pton(AF_INET, address, &ipv4) == 1 || inet_pton(AF_INET6, address, &ipv6) == 1
    }
}

typealias SwiftProtobuf_Duration = SwiftProtobuf.Google_Protobuf_Duration
import SwiftProtobuf
