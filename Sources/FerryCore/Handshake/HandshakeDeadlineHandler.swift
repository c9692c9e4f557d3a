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
    /// How long past the deadline the connection is kept once an answer is allowed.
    private var grace = TimeAmount.zero

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
        guard self.deadline == nil else { return }
        let deadline = NIODeadline.now() + self.timeout
        self.deadline = deadline
        self.schedule(at: deadline, context: context)
    }

    /// Leaves `grace` past the budget for an answer that is decided at the budget's end: the backend
    /// connect is capped at what is left of the budget, and its 504 must still get out. The timer is
    /// not moved (a handshake calls this twice, and moving a timer is a cancel and a new task, each
    /// a few allocations): when it fires at the deadline, it waits out the grace.
    func allowAnswer(grace: TimeAmount) {
        self.grace = max(self.grace, grace)
    }

    private func schedule(at when: NIODeadline, context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) {
            self.timer = nil
            if let deadline = self.deadline, deadline + self.grace > .now() {
                self.schedule(at: deadline + self.grace, context: context)
            } else {
                context.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension HandshakeDeadlineHandler: Sendable {}
