import NIOCore

/// Closes a connection that has not finished its handshake in time: a client that sends nothing, or
/// sends a request a byte at a time, cannot hold a connection open. It sits first in the pipeline so
/// the one budget covers everything before the upgrade (a TLS handshake, once there is one, included);
/// the upgrade removes it.
public final class HandshakeDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// When the budget runs out; nil until the connection is active.
    private(set) var deadline: NIODeadline?
    private var context: ChannelHandlerContext?

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.arm(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.arm(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
    }

    private func arm(context: ChannelHandlerContext) {
        guard self.timer == nil else { return }
        self.schedule(at: .now() + self.timeout, context: context)
    }

    /// Leaves `grace` past the budget for an answer that is decided at the budget's end: the backend
    /// connect is capped at what is left of the budget, and its 504 must still get out.
    func allowAnswer(grace: TimeAmount) {
        guard let deadline = self.deadline, let context = self.context else { return }
        self.timer?.cancel()
        self.schedule(at: deadline + grace, context: context)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        self.deadline = self.deadline ?? deadline
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HandshakeDeadlineHandler: Sendable {}
