import NIOCore
import NIOWebSocket

/// The timers of one WebSocket endpoint, for both ends of Ferry: the relay's
/// ``WebSocketSessionHandler`` and `ferry connect`'s ``WebSocketSideHandler``. Holds the scheduled
/// keepalive check (its moments decided by ``KeepaliveState``) and the close handshake's deadline;
/// each handler still says what a due timer does, as their protocol roles differ.
struct WebSocketTimers {
    var keepalive: KeepaliveState
    private var keepaliveCheck: Scheduled<Void>?
    private var closeDeadline: Scheduled<Void>?

    init(limits: Limits) {
        self.keepalive = KeepaliveState(limits: limits, now: .now())
    }

    /// Schedules `check` for the keepalive state's next deadline, replacing an earlier one; none if
    /// neither pings nor an idle timeout are on.
    mutating func scheduleKeepalive(on loop: EventLoop, _ check: @escaping () -> Void) {
        self.keepaliveCheck?.cancel()
        self.keepaliveCheck = nil
        guard let deadline = self.keepalive.nextDeadline else { return }
        self.keepaliveCheck = loop.assumeIsolated().scheduleTask(deadline: deadline, check)
    }

    /// What a due keepalive check asks for. `peerExcused`: the channel's reads are held back because
    /// the other side of the splice does not keep up, so a pong could not have been seen and the peer
    /// counts as heard.
    mutating func keepaliveDue(at now: NIODeadline, peerExcused: Bool) -> KeepaliveState.Action {
        if peerExcused { self.keepalive.pongReceived(at: now) }
        return self.keepalive.evaluate(at: now)
    }

    /// Bounds the close handshake: `expired` runs unless ``cancelAll()`` comes first within `timeout`.
    /// Arming again restarts the wait.
    mutating func armClose(in timeout: TimeAmount, on loop: EventLoop, _ expired: @escaping () -> Void) {
        self.closeDeadline?.cancel()
        self.closeDeadline = loop.assumeIsolated().scheduleTask(in: timeout, expired)
    }

    mutating func cancelAll() {
        self.keepaliveCheck?.cancel()
        self.closeDeadline?.cancel()
        self.keepaliveCheck = nil
        self.closeDeadline = nil
    }

    /// The keepalive ping; its payload names the sender, for whoever reads a packet capture.
    static func ping(allocator: ByteBufferAllocator) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .ping, data: allocator.buffer(string: "ferry"))
    }
}
