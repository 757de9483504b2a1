import Snapshot
import Testing

@Suite struct StreamEventsTests {
    static func describe(_ event: StreamEvent<Int>) -> String {
        switch event {
        case .request(let value): "request \(value)"
        case .wake: "wake"
        case .closed: "closed"
        }
    }

    @Test func wakeupsArriveBetweenRequestsAndCoalesceWhileTheStreamIsBusy() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        try await withStreamEvents(requests, wakeups: wakeups) { events in
            var iterator = events.makeAsyncIterator()
            // Three publishes before the stream reads: one wake-up.
            wakeups.wakeAll()
            wakeups.wakeAll()
            wakeups.wakeAll()
            peer.yield(1)
            var seen: [String] = []
            for _ in 0..<2 { if let event = await iterator.next() { seen.append(Self.describe(event)) } }
            #expect(seen == ["wake", "request 1"])
            // Once taken, the next publish wakes the stream again; then the peer's end.
            wakeups.wakeAll()
            peer.finish()
            seen = []
            for _ in 0..<2 { if let event = await iterator.next() { seen.append(Self.describe(event)) } }
            #expect(seen == ["wake", "closed"])
        }
        // The stream is gone: publishing reaches nobody and does not fail.
        wakeups.wakeAll()
    }
}
