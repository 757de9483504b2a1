import Foundation
import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// The simulated proxies' ADS streams as gRPC over HTTP/2 written directly on SwiftNIO: one
/// connection and one stream per proxy, each response read, answered and ACKed on the connection's
/// event loop by a channel handler. grpc-swift's client hands every message between the event loop
/// and two tasks (the response reader and the request writer); on a machine whose two cores the
/// server shares, those hand-offs were a third of the load generator's CPU.
///
/// The wire is what any gRPC client sends: a POST with `content-type: application/grpc` and
/// `te: trailers` on `/<service>/<method>`, messages framed with the 5-byte prefix (uncompressed),
/// the stream's end read from the trailers' `grpc-status`.
enum RawADSClient {
    /// The HTTP/2 settings grpc-swift's client uses: no server push, 8 MiB windows, 16 KB frames.
    static let windowSize = 8 << 20
    static let maxMessageBytes = 1 << 30

    /// One connection and stream of a proxy (``runRetrying(index:tracker:_:)`` repeats it): returns
    /// when they end, with why unless the load generator closed them.
    static func attempt<Subscriber: ADSSubscriber>(index: Int, port: Int, tracker: Tracker, subscriber: Subscriber) async -> String? {
        let outcome = StreamOutcome()
        do {
            let (connection, multiplexer) = try await connect(port: port)
            await withTaskCancellationHandler {
                do {
                    _ = try await multiplexer.createStreamChannel { stream in
                        stream.eventLoop.makeCompletedFuture {
                            let handler = ADSStreamHandler(subscriber: subscriber, index: index, tracker: tracker, outcome: outcome,
                                                           authority: "127.0.0.1:\(port)")
                            try stream.pipeline.syncOperations.addHandler(handler)
                        }
                    }.get()
                } catch {
                    outcome.record("the stream could not be opened: \(error)")
                    connection.close(promise: nil)
                }
                // The handler closes the connection when its stream ends, however it ends.
                try? await connection.closeFuture.get()
            } onCancel: {
                connection.close(promise: nil)
            }
        } catch {
            outcome.record("could not connect: \(error)")
        }
        return outcome.failure
    }

    private static func connect(port: Int) async throws -> (Channel, NIOHTTP2Handler.StreamMultiplexer) {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.targetWindowSize = windowSize
                    connection.initialSettings = [
                        HTTP2Setting(parameter: .enablePush, value: 0),
                        HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
                        HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
                    ]
                    var stream = NIOHTTP2Handler.StreamConfiguration()
                    stream.targetWindowSize = windowSize
                    let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: connection, streamConfiguration: stream
                    ) { pushed in pushed.close() }
                    return (channel, multiplexer)
                }
            }
    }
}

/// How a stream ended, when it ended other than by the load generator closing it: the first
/// reason recorded.
final class StreamOutcome: Sendable {
    private let reason = Mutex<String?>(nil)

    func record(_ failure: String) {
        reason.withLock { if $0 == nil { $0 = failure } }
    }

    var failure: String? { reason.withLock { $0 } }
}

/// One ADS stream: sends the subscriber's first request when the stream opens, then, for each
/// response as it completes, the subscriber's answer, flushed at once; reports to the tracker as
/// grpc-swift's loop does. Any end of the stream closes the connection.
final class ADSStreamHandler<Subscriber: ADSSubscriber>: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var subscriber: Subscriber
    private let index: Int
    private let tracker: Tracker
    private let outcome: StreamOutcome
    private let authority: String
    /// Bytes of a message not yet complete.
    private var pending: ByteBuffer?
    private var active = false
    private var ended = false

    init(subscriber: Subscriber, index: Int, tracker: Tracker, outcome: StreamOutcome, authority: String) {
        self.subscriber = subscriber
        self.index = index
        self.tracker = tracker
        self.outcome = outcome
        self.authority = authority
    }

    func channelActive(context: ChannelHandlerContext) {
        active = true
        tracker.connected(+1)
        let headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": "/" + Subscriber.method.fullyQualifiedMethod, ":authority": authority,
            "content-type": "application/grpc", "te": "trailers",
        ]
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        do {
            try write(subscriber.first(), context: context)
        } catch {
            end(context, "the first request could not be encoded: \(error)")
        }
        context.flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if active { tracker.connected(-1) }
        active = false
        end(context, "the stream closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .data(let frame):
            if case .byteBuffer(var bytes) = frame.data {
                if pending == nil { pending = bytes } else { pending!.writeBuffer(&bytes) }
                do {
                    try answerCompleteMessages(context: context)
                    // A message straddling reads keeps only its own bytes, not those answered before it.
                    pending?.discardReadBytes()
                } catch {
                    end(context, "\(error)")
                }
            }
            if frame.endStream { end(context, "the server ended the stream without trailers") }
        case .headers(let frame):
            // The response headers open the stream; trailers (end of stream) carry the status.
            guard frame.endStream else { return }
            let status = frame.headers.first(name: "grpc-status") ?? "none"
            end(context, "the server ended the stream: grpc-status \(status) \(frame.headers.first(name: "grpc-message") ?? "")")
        case .rstStream(let code):
            end(context, "the server reset the stream: \(code)")
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        end(context, "\(error)")
    }

    /// Answers every message complete in `pending`, in order.
    private func answerCompleteMessages(context: ChannelHandlerContext) throws {
        while let buffer = pending, buffer.readableBytes >= 5 {
            let start = buffer.readerIndex
            guard let compressed = buffer.getInteger(at: start, as: UInt8.self),
                  let length = buffer.getInteger(at: start + 1, as: UInt32.self) else { return }
            guard compressed == 0 else { throw RPCError(code: .internalError, message: "a compressed message (none was asked for)") }
            guard length <= RawADSClient.maxMessageBytes else { throw RPCError(code: .resourceExhausted, message: "a message of \(length) bytes") }
            guard buffer.readableBytes >= 5 + Int(length) else { return }
            let bytes = buffer.getBytes(at: start + 5, length: Int(length)) ?? []
            pending!.moveReaderIndex(forwardBy: 5 + Int(length))
            if pending!.readableBytes == 0 { pending = nil }
            let response = try RawResponse(bytes: bytes)
            let watched = tracker.receive(response)
            for request in try subscriber.receive(response) { try write(request, context: context) }
            context.flush()
            if let watched { tracker.ackedWatched(proxy: index, pattern: watched) }
            if subscriber.synced { tracker.synced(proxy: index) }
        }
    }

    /// Writes `request` as one length-prefixed gRPC message (not flushed).
    private func write(_ request: Subscriber.Request, context: ChannelHandlerContext) throws {
        let body: [UInt8] = try request.serializedBytes()
        var buffer = context.channel.allocator.buffer(capacity: 5 + body.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(buffer)))), promise: nil)
    }

    /// Records why the stream ended (the first reason only) and closes its connection.
    private func end(_ context: ChannelHandlerContext, _ reason: String) {
        guard !ended else { return }
        ended = true
        outcome.record(reason)
        context.channel.parent?.close(promise: nil)
    }
}
