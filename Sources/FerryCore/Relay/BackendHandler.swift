import NIOCore

/// The backend side of a session: bytes read from the backend go to the splice, bytes from the client
/// are written here. Holds back `read()` while the client cannot take more.
final class BackendHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let splice: Splice
    private let closeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var closing = false

    init(splice: Splice, closeTimeout: TimeAmount) {
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
        self.splice.backendData(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.splice.backendReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.splice.backendEnded(error: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.splice.backendEnded(error: error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.splice.backendGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.splice.backendBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        self.readGate.read(context: context, allowed: self.splice.backendMayRead)
    }

    // MARK: Called by the splice

    func write(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func resumeReading() {
        self.readGate.resume(context: self.context, allowed: self.splice.backendMayRead)
    }

    /// Closes once every byte already written has reached the socket, or after the close timeout.
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
extension BackendHandler: Sendable {}
