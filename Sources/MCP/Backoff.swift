/// Jittered exponential back-off: 0.5 s initial, ×1.5, ±50 % jitter, capped at 60 s; reset on success.
public struct Backoff: Sendable {
    public var initial: Double = 0.5
    public var multiplier: Double = 1.5
    public var maximum: Double = 60
    public var jitter: Double = 0.5
    private var current: Double

    public init(initial: Double = 0.5, maximum: Double = 60) {
        self.initial = initial
        self.maximum = maximum
        current = initial
    }

    /// The next delay in seconds (and advances).
    public mutating func next() -> Double {
        let delay = current * Double.random(in: (1 - jitter)...(1 + jitter))
        current = min(current * multiplier, maximum)
        return min(delay, maximum)
    }

    public mutating func reset() { current = initial }
}
