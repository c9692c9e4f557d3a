import NIOCore

/// Holds back one side's `read()` while the other side cannot take more (backpressure), and lets
/// the held read go once it can. Both halves of a splice use one each.
struct ReadGate {
    private(set) var pending = false

    /// Passes `read()` on if allowed, or remembers it.
    mutating func read(context: ChannelHandlerContext, allowed: Bool) {
        if allowed {
            context.read()
        } else {
            self.pending = true
        }
    }

    /// Issues the held read, if there is one and reading is allowed now (a side can wait on more than
    /// one condition: the client's reads wait on the backend and on the client's own channel).
    mutating func resume(context: ChannelHandlerContext?, allowed: Bool) {
        guard self.pending, allowed, let context else { return }
        self.pending = false
        context.read()
    }
}
