import NIOCore

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
