import NIOCore
import NIOHTTP1

// Hummingbird's idle timeout starts again on every part it reads, so a body sent a byte at a
// time kept a connection (and its request) open for as long as the sender liked. These two
// handlers hold a request to one deadline from its first byte to its end, head and body; a
// request not whole by then has its connection cut before anything is stored. No package
// does this: NIO's IdleStateHandler is also an idle timer.

/// Sits after the HTTP decoder: starts the deadline when a request begins (told by
/// `RequestStartTap`, or at a head whose bytes came with the previous request), ends it at
/// the request's end, and cuts the connection when it passes. It also answers a head over
/// the decoder's limits (too large, too many fields) with 431, where Hummingbird says 400.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Fired down the pipeline when the deadline cuts a request: its body reads fail, so a
    /// partial body is never taken for a whole one.
    struct RequestIncomplete: Error {}

    private let timeout: TimeAmount
    private let metrics: ReceiverMetrics?
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?
    /// A request has begun arriving and its end has not been read.
    private var reading = false
    /// Requests read whose answer has not been written to its end.
    private var unanswered = 0
    private var finished = false

    init(timeout: TimeAmount, metrics: ReceiverMetrics?) {
        self.timeout = timeout
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        self.context = nil
    }

    /// Bytes were read (before decoding): if no request is in progress, one begins.
    func bytesArrived() {
        if !reading { begin() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            if !reading { begin() }
            unanswered += 1
        case .body:
            break
        case .end:
            reading = false
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !finished else { return }
        // With an answer still owed to an earlier request, a 431 would come out of order:
        // Hummingbird's own 400 follows that answer instead.
        guard (error as? HTTPParserError) == .headerOverflow, unanswered == 0 else {
            context.fireErrorCaught(error)
            return
        }
        finished = true
        deadline?.cancel()
        metrics?.headersTooLarge()
        let head = HTTPResponseHead(version: .http1_1, status: .requestHeaderFieldsTooLarge,
                                    headers: ["Connection": "close", "Content-Length": "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        // Only the output is closed at once: closing with the rest of the head still arriving
        // would reset the connection, and a reset can discard the answer at the client. What
        // arrives is dropped (the decoder has stopped) until the client closes or the read
        // timeout passes.
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
        }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    private func begin() {
        guard let context, !finished else { return }
        reading = true
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            deadline = nil
            guard reading, !finished, let context = self.context else { return }
            finished = true
            metrics?.readTimedOut()
            context.fireErrorCaught(RequestIncomplete())
            context.close(promise: nil)
        }
    }
}

/// Sits in front of the HTTP decoder and tells the deadline when bytes arrive.
final class RequestStartTap: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadline: RequestDeadlineHandler

    init(deadline: RequestDeadlineHandler) {
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.bytesArrived()
        context.fireChannelRead(data)
    }
}
