import NIOConcurrencyHelpers
import NIOCore

/// Stops accepting at `--max-connections` instead of accepting and failing: while the count of open
/// connections is at the limit, the listener's `read()` (which accepts) is held back, so new clients
/// wait in the kernel's backlog until a connection closes. (Hummingbird's AvailableConnectionsHandler
/// uses the same trick.)
final class AcceptGate: Sendable {
    private struct State {
        var open = 0
        /// Listeners whose accept is held, with the loop to resume them on.
        var held: [ObjectIdentifier: (EventLoop, @Sendable () -> Void)] = [:]
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
    }

    var openConnections: Int { self.state.withLockedValue { $0.open } }

    /// A connection was accepted; it is counted until its channel closes.
    func accepted(_ channel: Channel) {
        self.state.withLockedValue { $0.open += 1 }
        channel.closeFuture.whenComplete { _ in self.closed() }
    }

    private func closed() {
        let resume = self.state.withLockedValue { state -> [(EventLoop, @Sendable () -> Void)] in
            state.open -= 1
            guard state.open < self.limit else { return [] }
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for (loop, action) in resume { loop.execute(action) }
    }

    /// True if a listener may accept now; otherwise `resume` runs (on `loop`) once it may.
    func mayAccept(listener: ObjectIdentifier, loop: EventLoop, resume: @escaping @Sendable () -> Void) -> Bool {
        self.state.withLockedValue { state in
            if state.open < self.limit { return true }
            state.held[listener] = (loop, resume)
            return false
        }
    }
}

/// The listener side of an ``AcceptGate``: sits in the server channel's pipeline.
final class AcceptGateHandler: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias OutboundIn = Never

    private let gate: AcceptGate

    init(gate: AcceptGate) {
        self.gate = gate
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.gate.accepted(Self.unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        let channel = context.channel
        let mayAccept = self.gate.mayAccept(listener: ObjectIdentifier(self), loop: context.eventLoop) {
            channel.read()
        }
        if mayAccept { context.read() }
    }
}

@available(*, unavailable)
extension AcceptGateHandler: Sendable {}
