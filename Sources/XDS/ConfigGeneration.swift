import Logging
import Mesh
import Snapshot
import Synchronization
import Translation

/// Proxies that receive identical config: same kind, namespace, labels, generator, locality and
/// (for proxyless gRPC) DNS domain.
public struct ProxyClass: Hashable, Sendable {
    public let kind: Proxy.Kind
    public let namespace: String
    public let labels: [String: String]
    public let proxyless: Bool
    /// Endpoint priorities depend on where the proxy is.
    public let locality: String
    /// Proxyless gRPC listener aliases (short names) depend on the DNS domain.
    public let dnsDomain: String
    /// `ISTIO_MUTUAL` clusters name the proxy's certificate files.
    public let workloadCertificates: Proxy.WorkloadCertificates?
    /// The hash of the fields, computed once: classes are looked up on every request and push.
    private let hashCode: Int

    public init(_ proxy: Proxy) {
        kind = proxy.kind
        namespace = proxy.namespace
        labels = proxy.labels
        proxyless = proxy.isProxylessGRPC
        locality = proxy.locality
        dnsDomain = proxy.isProxylessGRPC ? proxy.dnsDomain : ""
        workloadCertificates = proxy.isProxylessGRPC ? nil : proxy.workloadCertificates
        var hasher = Hasher()
        hasher.combine(kind)
        hasher.combine(namespace)
        hasher.combine(labels)
        hasher.combine(proxyless)
        hasher.combine(locality)
        hasher.combine(dnsDomain)
        hasher.combine(workloadCertificates)
        hashCode = hasher.finalize()
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashCode) }

    public static func == (a: ProxyClass, b: ProxyClass) -> Bool {
        a.hashCode == b.hashCode && a.kind == b.kind && a.namespace == b.namespace && a.labels == b.labels
            && a.proxyless == b.proxyless && a.locality == b.locality && a.dnsDomain == b.dnsDomain
            && a.workloadCertificates == b.workloadCertificates
    }
}

/// The config of one snapshot: its mesh model, and the encoded resources per proxy class,
/// translated and serialized once, then shared by every connection of that class.
public final class ConfigGeneration: Sendable {
    public let snapshotVersion: UInt64
    public let model: MeshModel
    private struct Translated {
        var config: EncodedConfig
        var diagnostics: [Diagnostic]
        /// A proxy of the class (translation reads the class's fields only).
        var proxy: Proxy
    }

    private let cache = Mutex<[ProxyClass: Translated]>([:])
    /// Routes of each VirtualService as translated for this generation's classes.
    public let routeMemo: RouteMemo
    private let logger = Logger(label: "swiftpilot.translation")

    /// - Parameter previous: the generation before this one. The classes it translated are brought
    ///   forward now, rebuilding only what the change between the two models reaches (an endpoint
    ///   change rebuilds the changed assignments, a VirtualService change the listeners and routes);
    ///   classes a change reaches entirely are translated again on first use.
    public init(snapshot: Snapshot, previous: ConfigGeneration? = nil) {
        snapshotVersion = snapshot.version
        model = MeshModel(snapshot: snapshot, previous: previous?.model)
        guard let previous else {
            routeMemo = RouteMemo()
            return
        }
        let change = MeshChange(from: previous.model, to: model)
        // Routes depend on services, DestinationRules and delegates besides their VirtualService:
        // any change to those (`everything`) starts the memo afresh. A change that leaves routing
        // as it was (endpoints alone) shares the memo: this generation would not use it, and a
        // memo carries only what its generation used.
        let memo = change.everything ? RouteMemo() : change.routing ? RouteMemo(carrying: previous.routeMemo) : previous.routeMemo
        routeMemo = memo
        let carried = previous.cache.withLock { $0 }
        var updated: [ProxyClass: Translated] = [:]
        for (key, old) in carried {
            if change.isEmpty {
                updated[key] = old
                continue
            }
            guard let update = Translator.update(for: old.proxy, in: model, change: change, edsClusters: old.config[.endpoint].keys, memo: memo) else { continue }
            let diagnostics = update.routingDiagnostics.map { routing in
                old.diagnostics.filter { $0.resource.kind == .destinationRule } + routing
            } ?? old.diagnostics
            if update.routingDiagnostics != nil { log(diagnostics, for: key) }
            updated[key] = Translated(config: old.config.applying(update), diagnostics: diagnostics, proxy: old.proxy)
        }
        cache.withLock { $0 = updated }
    }

    /// The encoded config for a proxy (computed on first use for its class).
    public func config(for proxy: Proxy) -> EncodedConfig {
        config(for: ProxyClass(proxy), proxy: proxy)
    }

    /// ``config(for:)`` with the proxy's class already known (`key` must be `ProxyClass(proxy)`).
    public func config(for key: ProxyClass, proxy: Proxy) -> EncodedConfig {
        if let cached = cache.withLock({ $0[key] }) { return cached.config }
        let translated = Translator.config(for: proxy, in: model, memo: routeMemo)
        let entry = Translated(config: EncodedConfig(translated), diagnostics: translated.diagnostics, proxy: proxy)
        let (config, fresh) = cache.withLock { cache in
            if let raced = cache[key] { return (raced.config, false) }
            cache[key] = entry
            return (entry.config, true)
        }
        if fresh { log(translated.diagnostics, for: key) }
        return config
    }

    private func log(_ diagnostics: [Diagnostic], for key: ProxyClass) {
        for diagnostic in diagnostics {
            logger.warning("config not translated as written", metadata: ["snapshot": "\(snapshotVersion)", "proxyKind": "\(key.kind)", "problem": "\(diagnostic)"])
        }
    }
}

extension ConfigGeneration {
    /// What translation could not do as written, for every proxy class translated so far.
    public var diagnostics: [Diagnostic] {
        let all = cache.withLock { $0.values.flatMap(\.diagnostics) }
        var seen = Set<String>()
        return all.filter { seen.insert($0.description).inserted }.sorted { $0.description < $1.description }
    }
}

/// Hands the latest generation to every connection. Subscribers get a wake-up, not a queue:
/// a slow connection that misses several generations simply reads the newest.
public final class GenerationBroadcaster: Sendable {
    private let current: Mutex<ConfigGeneration>
    /// The streams woken by each publish.
    public let wakeups = Wakeups()

    public init(initial: ConfigGeneration) {
        current = Mutex(initial)
    }

    public var latest: ConfigGeneration { current.withLock { $0 } }

    public func publish(_ generation: ConfigGeneration) {
        current.withLock { $0 = generation }
        wakeups.wakeAll()
    }
}
