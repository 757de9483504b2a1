import Metrics

/// Istio-compatible xDS metrics (`pilot_xds`, `pilot_xds_pushes`, `pilot_total_xds_rejects`, …).
public struct XDSMetrics: Sendable {
    public init() {}

    private static let connections = Gauge(label: "pilot_xds")
    private static let convergence = Timer(label: "pilot_proxy_convergence_time", preferredDisplayUnit: .seconds)

    func connected(_ delta: Int) {
        Self.connectionCount.add(delta)
        Self.connections.record(Self.connectionCount.value)
    }

    private static let connectionCount = AtomicCounter()

    func pushed(type: XDSType, bytes: Int) {
        guard let counters = Self.pushCounters[type] else { return }
        counters.pushes.increment()
        counters.bytes.increment(by: bytes)
    }

    /// Made once (on first use, after the metrics backend is bootstrapped), not per push.
    private static let pushCounters: [XDSType: (pushes: Counter, bytes: Counter)] = Dictionary(uniqueKeysWithValues: XDSType.allCases.map { type in
        let dimensions = [("type", type.shortName.lowercased())]
        return (type, (Counter(label: "pilot_xds_pushes", dimensions: dimensions), Counter(label: "pilot_xds_sent_bytes", dimensions: dimensions)))
    })

    func rejected(type: XDSType) {
        Counter(label: "pilot_total_xds_rejects", dimensions: [("type", type.shortName.lowercased())]).increment()
    }

    func staleNonce(type: XDSType) {
        Counter(label: "pilot_xds_expired_nonce", dimensions: [("type", type.shortName.lowercased())]).increment()
    }

    /// Time to compute and write one push to one proxy.
    func pushTime(_ duration: Duration) {
        Self.push.recordNanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + Int64(duration.components.attoseconds / 1_000_000_000))
    }

    private static let push = Timer(label: "pilot_xds_push_time", preferredDisplayUnit: .seconds)

    /// Time from sending a version to the proxy's ACK of it.
    func converged(after seconds: Double) {
        Self.convergence.recordNanoseconds(Int64(seconds * 1e9))
    }
}

import Synchronization

final class AtomicCounter: Sendable {
    private let storage = Atomic<Int>(0)
    func add(_ delta: Int) { storage.add(delta, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
    func next() -> Int { storage.add(1, ordering: .relaxed).newValue }
}
