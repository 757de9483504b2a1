#if os(Linux)
/// glibc's `malloc_trim` (declared in `malloc.h`, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32
#endif

/// Gives heap memory freed after pushes back to the system. A cold sync writes megabytes per
/// stream; glibc keeps the freed pages of those buffers in its arenas until trimmed, so without
/// this the process holds its peak, not what its connections use.
public struct HeapTrimmer: Sendable {
    let activity: AtomicCounter
    public var interval: Duration

    init(activity: AtomicCounter, interval: Duration = .seconds(2)) {
        self.activity = activity
        self.interval = interval
    }

    /// Trims once per interval in which requests were handled or responses written; idle servers do nothing.
    public func run() async {
        var seen = activity.value
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let now = activity.value
            guard now != seen else { continue }
            seen = now
            Self.trim()
        }
    }

    public static func trim() {
        #if os(Linux)
        _ = mallocTrim(0)
        #endif
    }
}
