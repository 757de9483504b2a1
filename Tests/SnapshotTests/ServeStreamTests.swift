import Snapshot
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct ServeStreamTests {
    /// What a stream's handlers did, in order, and whether two of them ever ran at once.
    final class Trace: Sendable {
        let lines = Mutex<[String]>([])
        let inside = Atomic<Int>(0)
        let overlapped = Atomic<Bool>(false)
        let (events, input) = AsyncStream<String>.makeStream()

        func enter() { if inside.add(1, ordering: .sequentiallyConsistent).newValue > 1 { overlapped.store(true, ordering: .sequentiallyConsistent) } }
        var didOverlap: Bool { overlapped.load(ordering: .sequentiallyConsistent) }
        func leave() { inside.subtract(1, ordering: .sequentiallyConsistent) }
        /// A handler that only notes `line`.
        func handled(_ line: String) {
            enter()
            note(line)
            leave()
        }
        func note(_ line: String) {
            lines.withLock { $0.append(line) }
            input.yield(line)
        }
    }

    /// A gate a handler waits at until the test opens it.
    final class Gate: Sendable {
        let (opened, input) = AsyncStream<Void>.makeStream()
        func wait() async { for await _ in opened { return } }
        func open() { input.yield() }
    }

    struct Failed: Error {}

    @Test func requestsRunInOrderAndAnIdleStreamPushesOnAWakeup() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        let trace = Trace()
        async let served: Void = serveStream(requests, wakeups: wakeups,
                                             onRequest: { trace.note("request \($0)") }, onWake: { trace.note("wake") })
        var events = trace.events.makeAsyncIterator()
        peer.yield(1)
        peer.yield(2)
        #expect(await events.next() == "request 1")
        #expect(await events.next() == "request 2")
        // The stream idles waiting for its peer; a publish still reaches it.
        wakeups.wakeAll()
        #expect(await events.next() == "wake")
        peer.yield(3)
        #expect(await events.next() == "request 3")
        peer.finish()
        try await served
        // The stream is gone: publishing reaches nobody and does not fail.
        wakeups.wakeAll()
        #expect(trace.lines.withLock { $0 } == ["request 1", "request 2", "wake", "request 3"])
    }

    @Test func wakeupsDuringARequestCoalesceIntoOnePushAfterIt() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        let trace = Trace()
        let gate = Gate()
        async let served: Void = serveStream(requests, wakeups: wakeups, onRequest: { request in
            trace.enter()
            trace.note("request \(request) starts")
            await gate.wait()
            trace.note("request \(request) ends")
            trace.leave()
        }, onWake: { trace.handled("wake") })
        var events = trace.events.makeAsyncIterator()
        peer.yield(1)
        #expect(await events.next() == "request 1 starts")
        // Three publishes while the request is being handled: one push, after the request.
        wakeups.wakeAll()
        wakeups.wakeAll()
        wakeups.wakeAll()
        gate.open()
        #expect(await events.next() == "request 1 ends")
        #expect(await events.next() == "wake")
        peer.finish()
        try await served
        #expect(trace.lines.withLock { $0 } == ["request 1 starts", "request 1 ends", "wake"])
        #expect(!trace.didOverlap)
    }

    @Test func aRequestWaitsForThePushInProgress() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        let trace = Trace()
        let gate = Gate()
        async let served: Void = serveStream(requests, wakeups: wakeups, onRequest: { trace.handled("request \($0)") }, onWake: {
            trace.enter()
            trace.note("push starts")
            await gate.wait()
            trace.note("push ends")
            trace.leave()
        })
        var events = trace.events.makeAsyncIterator()
        peer.yield(1)
        #expect(await events.next() == "request 1")
        wakeups.wakeAll()
        #expect(await events.next() == "push starts")
        peer.yield(2)
        // Give the request task time to read request 2 and reach the turn the push holds.
        try await Task.sleep(for: .milliseconds(50))
        gate.open()
        #expect(await events.next() == "push ends")
        #expect(await events.next() == "request 2")
        peer.finish()
        try await served
        #expect(!trace.didOverlap)
    }

    @Test func theStreamEndsAfterThePushInProgressAndThrowsItsError() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        let trace = Trace()
        let gate = Gate()
        let served = Task {
            defer { trace.note("returned") }
            try await serveStream(requests, wakeups: wakeups, onRequest: { trace.note("request \($0)") }, onWake: {
                trace.note("push starts")
                await gate.wait()
                throw Failed()
            })
        }
        var events = trace.events.makeAsyncIterator()
        peer.yield(1)
        #expect(await events.next() == "request 1")
        wakeups.wakeAll()
        #expect(await events.next() == "push starts")
        peer.finish()
        try await Task.sleep(for: .milliseconds(50))
        #expect(!trace.lines.withLock { $0.contains("returned") }, "the stream must not end while a push writes")
        gate.open()
        await #expect(throws: Failed.self) { try await served.value }
    }

    @Test func anErrorOfARequestEndsTheStream() async throws {
        let wakeups = Wakeups()
        let (requests, peer) = AsyncStream<Int>.makeStream()
        peer.yield(1)
        peer.yield(2)
        let trace = Trace()
        await #expect(throws: Failed.self) {
            try await serveStream(requests, wakeups: wakeups, onRequest: { request in
                trace.note("request \(request)")
                throw Failed()
            }, onWake: {})
        }
        #expect(trace.lines.withLock { $0 } == ["request 1"])
        // No push starts for a stream that ended.
        wakeups.wakeAll()
    }
}
