#if os(Linux)
/// glibc's `malloc_trim` (declared in `malloc.h`, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32
/// glibc's `mallopt`.
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
/// `M_ARENA_MAX` in glibc's `malloc.h`.
private let mArenaMax: Int32 = -8
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

    /// Caps glibc's malloc arenas at one per core (glibc's default is eight per core). Each thread
    /// that allocates can get an arena of its own, and every arena keeps partly used pages that
    /// `malloc_trim` cannot return; with gRPC streams served from the whole thread pool that costs
    /// tens of KB per connected proxy. Call first thing, before threads start allocating. A
    /// `MALLOC_ARENA_MAX` set in the environment wins.
    public static func limitArenas(environment: [String: String], cores: Int) {
        #if os(Linux)
        guard environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = mallopt(mArenaMax, Int32(clamping: max(1, cores)))
        #endif
    }

    public static func trim() {
        #if os(Linux)
        _ = mallocTrim(0)
        #endif
    }
}
