import NIOCore
import NIOHTTP2

/// An answered WebSocket stream as the session sees a TCP connection: DATA frames in are bytes in,
/// bytes out are DATA frames, END_STREAM is a FIN (`inputClosed`), and closing the session ends the
/// stream as closing a TCP connection does: END_STREAM, then the client's END_STREAM (RFC 8441 §5:
/// the stream's end is the connection's). Browsers report a stream reset (RST_STREAM) as an abnormal
/// closure (1006) even after the close handshake, so the stream channel is only closed (which resets
/// a stream still open) once the client has ended its side or `closeTimeout` has passed.
///
/// Backpressure needs nothing here: the stream channel returns flow-control window only for what it
/// delivers on `read()`, which the session holds back while its backend is not writable, and it turns
/// unwritable while the client's window is closed, which stops the session reading its backend.
final class HTTP2TunnelHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// WebSocket bytes the client sent before its 200, delivered first.
    private var earlyBytes: ByteBuffer?
    private var outputEnded = false
    private var inputEnded = false
    /// A close waiting for the client's END_STREAM, and its bound.
    private var pendingClose: (promise: EventLoopPromise<Void>?, timer: Scheduled<Void>)?
    private let closeTimeout: TimeAmount

    init(earlyBytes: ByteBuffer?, closeTimeout: TimeAmount) {
        self.earlyBytes = earlyBytes
        self.closeTimeout = closeTimeout
    }

    /// The first read the session asks for delivers the early bytes (when this handler is added, the
    /// session's handlers after it are not in the pipeline yet).
    func read(context: ChannelHandlerContext) {
        if let early = self.earlyBytes {
            self.earlyBytes = nil
            if early.readableBytes > 0 {
                context.fireChannelRead(Self.wrapInboundOut(early))
                context.fireChannelReadComplete()
            }
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .data(let frame):
            if case .byteBuffer(let bytes) = frame.data, bytes.readableBytes > 0 {
                context.fireChannelRead(Self.wrapInboundOut(bytes))
            }
            if frame.endStream { self.clientEnded(context: context) }
        case .headers(let frame):
            // Trailers on a tunnel carry nothing for it; their END_STREAM still ends the input.
            if frame.endStream { self.clientEnded(context: context) }
        default:
            break
        }
    }

    /// The client ended its side. Before the session closes this is its FIN; after, the stream is now
    /// closed both ways and NIO closes the stream channel by itself (``channelInactive(context:)``).
    private func clientEnded(context: ChannelHandlerContext) {
        self.inputEnded = true
        if self.pendingClose == nil {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let pending = self.pendingClose {
            self.pendingClose = nil
            pending.timer.cancel()
            pending.promise?.succeed(())
        }
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = Self.unwrapOutboundIn(data)
        context.write(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
    }

    /// Ends the stream cleanly (END_STREAM after the last bytes, the close frame among them) before
    /// the stream channel closes; a stream the client has not ended too is then reset by NIO.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .input {
            context.close(mode: mode, promise: promise)
            return
        }
        if !self.outputEnded, context.channel.isActive {
            self.outputEnded = true
            context.writeAndFlush(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
        }
        if mode == .output {
            promise?.succeed(())
            return
        }
        if let pending = self.pendingClose {
            // Asked again (the session's own close timer): no more waiting.
            self.pendingClose = nil
            pending.timer.cancel()
            if let promise { pending.promise?.futureResult.cascade(to: promise) }
            context.close(mode: mode, promise: pending.promise ?? promise)
            return
        }
        guard context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        // Closing the stream channel now would reset the stream and drop what is still queued on the
        // connection (the close frame among it). Once both sides' END_STREAM are out the stream is
        // closed and NIO closes its channel; a client that never ends its side is reset at the bound.
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: self.closeTimeout) {
            loopBound.value.close(promise: nil)
        }
        self.pendingClose = (promise, timer)
    }
}

@available(*, unavailable)
extension HTTP2TunnelHandler: Sendable {}
