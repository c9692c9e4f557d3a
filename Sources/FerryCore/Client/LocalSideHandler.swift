import NIOCore

/// The local side of a `ferry connect` session (an accepted socket, or standard input and output):
/// bytes read go to the splice, bytes from the relay are written here. Holds back `read()` while the
/// WebSocket channel cannot take more. The channel allows half-closure, so local EOF still leaves
/// the way back open for what the relay sends until its close.
final class LocalSideHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let splice: ClientSplice
    private let closeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var closing = false

    init(splice: ClientSplice, closeTimeout: TimeAmount) {
        self.splice = splice
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
        self.splice.localData(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.splice.localReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.splice.localEnded(error: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.splice.localEnded(error: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.splice.localGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.splice.localBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        self.readGate.read(context: context, allowed: self.splice.localMayRead)
    }

    // MARK: Called by the splice

    func write(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func resumeReading() {
        self.readGate.resume(context: self.context, allowed: self.splice.localMayRead)
    }

    /// Closes once every byte already written has left, or after the close timeout (a local reader
    /// that stopped reading cannot hold the session open for ever).
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
}

@available(*, unavailable)
extension LocalSideHandler: Sendable {}

/// Keeps what the local side delivers before its session is wired: NIO reads a descriptor whose
/// peer has already hung up at once, whatever auto-read says (`: | ferry connect URL`, a pipe at EOF
/// when registered; a local client that wrote and half-closed before the WebSocket opened), and
/// those bytes and that EOF would pass an empty pipeline and be lost, leaving the session waiting
/// for an EOF that already came. Added when the local channel is made; removed by
/// ``ConnectSession`` once ``LocalSideHandler`` is behind it, which then gets what was kept.
/// Holds at most what the kernel had buffered.
final class EarlyLocalInput: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var kept: [ByteBuffer] = []
    private var inputClosed = false

    init() {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.kept.append(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.inputClosed = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        let kept = self.kept
        self.kept = []
        for buffer in kept { context.fireChannelRead(Self.wrapInboundOut(buffer)) }
        if !kept.isEmpty { context.fireChannelReadComplete() }
        if self.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    }
}

@available(*, unavailable)
extension EarlyLocalInput: Sendable {}
