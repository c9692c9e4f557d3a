import NIOCore

/// Closes a connection that has not finished its handshake in time: a client that sends nothing, or
/// sends a request a byte at a time, cannot hold a connection open. It sits first in the pipeline so
/// the one budget covers everything before the upgrade (a TLS handshake, once there is one, included);
/// the upgrade removes it.
public final class HandshakeDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.arm(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    private func arm(context: ChannelHandlerContext) {
        guard self.timer == nil else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: self.timeout) {
            loopBound.value.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HandshakeDeadlineHandler: Sendable {}
