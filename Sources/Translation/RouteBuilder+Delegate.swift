import IstioAPI
import Mesh
import Snapshot

typealias HTTPRule = Istio_Networking_V1alpha3_HTTPRoute
typealias HTTPMatch = Istio_Networking_V1alpha3_HTTPMatchRequest

/// Delegate VirtualServices (Istio §4.12): a root rule with `delegate` is replaced by the rules of
/// the delegate (a VS without hosts), one level deep.
extension RouteBuilder {
    /// One HTTP rule and the VirtualService it came from (a delegate's rules resolve short host
    /// names in the delegate's namespace).
    struct SourcedRule {
        var rule: HTTPRule
        var source: ConfigResource
    }

    /// The rules of a VS with delegates expanded. A missing delegate, one not exported to the root's
    /// namespace, or one with hosts drops only that root rule.
    static func expandedRules(of service: VirtualService, resource: ConfigResource, in model: MeshModel) -> [SourcedRule] {
        service.http.flatMap { root -> [SourcedRule] in
            guard root.hasDelegate else { return [SourcedRule(rule: root, source: resource)] }
            guard let (delegateResource, delegate) = delegateService(root.delegate, rootNamespace: resource.key.namespace, in: model)
            else { return [] }
            return delegate.http.filter { !$0.hasDelegate }.compactMap { rule in
                merged(root: root, delegate: rule).map { SourcedRule(rule: $0, source: delegateResource) }
            }
        }
    }

    static func delegateService(_ reference: Istio_Networking_V1alpha3_Delegate, rootNamespace: String, in model: MeshModel)
        -> (ConfigResource, VirtualService)? {
        let namespace = reference.namespace.isEmpty ? rootNamespace : reference.namespace
        for resource in model.virtualServices(visibleTo: rootNamespace)
        where resource.key.name == reference.name && resource.key.namespace == namespace {
            if case .virtualService(let service) = resource.spec, service.hosts.isEmpty { return (resource, service) }
        }
        return nil
    }

    /// A delegate rule under a root rule: its matches must each fall within some root match (those
    /// that do not are dropped, and the rule with them when none is left); unset fields inherit
    /// from the root; names join as `root-delegate`.
    static func merged(root: HTTPRule, delegate: HTTPRule) -> HTTPRule? {
        var rule = delegate
        if !root.name.isEmpty { rule.name = delegate.name.isEmpty ? root.name : "\(root.name)-\(delegate.name)" }
        if root.match.isEmpty {
            rule.match = delegate.match
        } else if delegate.match.isEmpty {
            rule.match = root.match
        } else {
            rule.match = delegate.match.flatMap { match in root.match.compactMap { merged(root: $0, delegate: match) }.prefix(1) }
            if rule.match.isEmpty { return nil }
        }
        if !rule.hasRewrite, root.hasRewrite { rule.rewrite = root.rewrite }
        if !rule.hasTimeout, root.hasTimeout { rule.timeout = root.timeout }
        if !rule.hasRetries, root.hasRetries { rule.retries = root.retries }
        if !rule.hasFault, root.hasFault { rule.fault = root.fault }
        if !rule.hasMirror, rule.mirrors.isEmpty {
            if root.hasMirror { rule.mirror = root.mirror }
            if root.hasMirrorPercentage { rule.mirrorPercentage = root.mirrorPercentage }
            rule.mirrors = root.mirrors
        }
        if !rule.hasCorsPolicy, root.hasCorsPolicy { rule.corsPolicy = root.corsPolicy }
        if !rule.hasHeaders, root.hasHeaders { rule.headers = root.headers }
        return rule
    }

    /// The delegate match narrowed by the root match, or nil when it is not within it.
    static func merged(root: HTTPMatch, delegate: HTTPMatch) -> HTTPMatch? {
        guard uri(delegate.uri, isWithin: root.uri, rootSet: root.hasUri) else { return nil }
        guard agrees(delegate.headers, root.headers), agrees(delegate.queryParams, root.queryParams),
              agrees(delegate.withoutHeaders, root.withoutHeaders) else { return nil }
        if delegate.port != 0, root.port != 0, delegate.port != root.port { return nil }
        var match = root
        if delegate.hasUri { match.uri = delegate.uri }
        if delegate.hasMethod { match.method = delegate.method }
        if delegate.hasAuthority { match.authority = delegate.authority }
        if delegate.hasScheme { match.scheme = delegate.scheme }
        match.headers.merge(delegate.headers) { _, new in new }
        match.queryParams.merge(delegate.queryParams) { _, new in new }
        match.withoutHeaders.merge(delegate.withoutHeaders) { _, new in new }
        if delegate.port != 0 { match.port = delegate.port }
        if delegate.ignoreUriCase { match.ignoreUriCase = true }
        match.name = [root.name, delegate.name].filter { !$0.isEmpty }.joined(separator: "-")
        return match
    }

    /// Exact within a prefix or the same exact; prefix within a prefix; regex only when equal.
    static func uri(_ delegate: Istio_Networking_V1alpha3_StringMatch, isWithin root: Istio_Networking_V1alpha3_StringMatch, rootSet: Bool) -> Bool {
        guard rootSet, let rootType = root.matchType else { return true }
        switch (delegate.matchType, rootType) {
        case (nil, _): return true
        case (.exact(let path), .prefix(let prefix)), (.prefix(let path), .prefix(let prefix)): return path.hasPrefix(prefix)
        case (.exact(let path), .exact(let exact)): return path == exact
        case (.regex(let a), .regex(let b)): return a == b
        default: return false
        }
    }

    /// The same key never asks for two different values.
    static func agrees(_ delegate: [String: Istio_Networking_V1alpha3_StringMatch], _ root: [String: Istio_Networking_V1alpha3_StringMatch]) -> Bool {
        delegate.allSatisfy { key, value in root[key].map { $0 == value } ?? true }
    }
}
