import NIOCore

/// What a ``ByteStreamHandler`` reports to and asks: the splice its session belongs to. The relay's
/// ``Splice`` owns the backend side, `ferry connect`'s ``ClientSplice`` the local side.
protocol ByteStreamOwner: AnyObject {
    /// Bytes read from the stream.
    func streamData(_ buffer: ByteBuffer)
    /// The end of one read burst: time to flush the other side.
    func streamReadComplete()
    /// The stream finished sending (EOF, `error` nil) or failed.
    func streamEnded(error: Error?)
    /// The stream's channel is closed.
    func streamGone()
    /// The stream can take more: the other side may read again.
    func streamBecameWritable()
    /// Whether the stream may read now (the other side can take more).
    var streamMayRead: Bool { get }
}

/// The plain byte-stream side of a session (the relay's backend connection, or `ferry connect`'s
/// local socket or standard input and output): bytes read go to the owner, bytes from the
/// WebSocket side are written here, and `read()` is held back while the owner says the other side
/// cannot take more (connect-proxy's `GlueHandler` pattern). The channel allows half-closure, so
/// EOF still leaves the way back open until the session ends.
///
/// Generic over its owner, so each use names its splice's type (`BackendHandler`, `LocalSideHandler`)
/// and a handler cannot be given the wrong splice. The owner is called through its protocol: one
/// indirect call per read burst, as NIO's own call into the handler is.
final class ByteStreamHandler<Owner: ByteStreamOwner>: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let owner: Owner
    private let closeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var closing = false

    init(owner: Owner, closeTimeout: TimeAmount) {
        self.owner = owner
        self.closeTimeout = closeTimeout
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.owner.streamData(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.owner.streamReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.owner.streamEnded(error: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.owner.streamEnded(error: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.owner.streamGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.owner.streamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.readGate.admit(allowed: self.owner.streamMayRead) { context.read() }
    }

    // MARK: Called by the owner

    func write(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func resumeReading() {
        if self.readGate.release(allowed: self.owner.streamMayRead) { self.context?.read() }
    }

    /// Closes once every byte already written has reached the socket, or after the close timeout (a
    /// peer that stopped reading cannot hold the session open for ever).
    func closeAfterPendingWrites() {
        guard !self.closing, let context else { return }
        self.closing = true
        self.resumeReading()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        let loop = context.eventLoop.assumeIsolated()
        let deadline = loop.scheduleTask(in: self.closeTimeout) { context.close(promise: nil) }
        written.futureResult.assumeIsolated().whenComplete { _ in
            deadline.cancel()
            context.close(promise: nil)
        }
    }

    func closeNow() {
        self.closing = true
        self.context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension ByteStreamHandler: Sendable {}
