import NIOConcurrencyHelpers
import NIOCore

/// Stops accepting at `--max-connections` instead of accepting and failing: while the count of open
/// connections is at the limit, the listener's `read()` (which accepts) is held back, so new clients
/// wait in the kernel's backlog until a connection closes. (Hummingbird's AvailableConnectionsHandler
/// uses the same trick.)
///
/// It also applies `--max-connections-per-ip` at accept, to every open connection of a direct peer
/// (handshakes included): otherwise one address holding silent sockets fills the gate, and every
/// other address waits in the backlog. A connection over the limit is closed at once, as HAProxy's
/// `src_conn_cur` rules do. Peers that speak for others (PROXY-protocol listeners, `--trusted-proxy`
/// addresses, Unix-socket clients) are not counted here; their clients are counted per client
/// address when a session slot is reserved.
final class AcceptGate: Sendable {
    private struct State {
        var open = 0
        /// Listeners whose accept is held, with the loop to resume them on.
        var held: [ObjectIdentifier: (EventLoop, @Sendable () -> Void)] = [:]
        /// Open connections per counted peer address.
        var perAddress: [String: Int] = [:]
        /// Every new connection is closed at once (the listeners are about to close).
        var shut = false
        var limit: Int
        /// 0: no per-address limit.
        var perAddressLimit: Int
    }

    private let state: NIOLockedValueBox<State>

    init(limit: Int, perAddressLimit: Int = 0) {
        self.state = NIOLockedValueBox(State(limit: limit, perAddressLimit: perAddressLimit))
    }

    var limit: Int { self.state.withLockedValue { $0.limit } }

    /// New limits (a reload): a higher one lets held listeners accept again at once.
    func setLimits(limit: Int, perAddressLimit: Int) {
        let resume = self.state.withLockedValue { state -> [(EventLoop, @Sendable () -> Void)] in
            state.limit = limit
            state.perAddressLimit = perAddressLimit
            guard state.open < limit else { return [] }
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for (loop, action) in resume { loop.execute(action) }
    }

    var openConnections: Int { self.state.withLockedValue { $0.open } }

    /// A connection was accepted; it is counted until its channel closes. `address` is the key it
    /// counts under for the per-address limit (nil: not counted per address). Returns false if that
    /// address already has its limit open: the caller closes the connection.
    func accepted(_ channel: Channel, address: String?) -> Bool {
        let (admitted, counted) = self.state.withLockedValue { state -> (Bool, String?) in
            state.open += 1
            guard !state.shut else { return (false, nil) }
            guard state.perAddressLimit > 0, let address else { return (true, nil) }
            let count = state.perAddress[address, default: 0]
            guard count < state.perAddressLimit else { return (false, nil) }
            state.perAddress[address] = count + 1
            return (true, address)
        }
        channel.closeFuture.whenComplete { _ in self.closed(address: counted) }
        return admitted
    }

    /// From now on every new connection is closed at once: for a lifetime that ends accepting at an
    /// event (`--run-once`), so that no connection slips in while the listeners are being closed.
    func shut() {
        self.state.withLockedValue { $0.shut = true }
    }

    private func closed(address: String?) {
        let resume = self.state.withLockedValue { state -> [(EventLoop, @Sendable () -> Void)] in
            state.open -= 1
            if let address {
                let left = state.perAddress[address, default: 1] - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
            guard state.open < state.limit else { return [] }
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for (loop, action) in resume { loop.execute(action) }
    }

    /// True if a listener may accept now; otherwise `resume` runs (on `loop`) once it may.
    func mayAccept(listener: ObjectIdentifier, loop: EventLoop, resume: @escaping @Sendable () -> Void) -> Bool {
        self.state.withLockedValue { state in
            if state.open < state.limit { return true }
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
    /// The per-address key of a new connection's peer; nil for peers not counted per address.
    private let addressKey: @Sendable (SocketAddress?) -> String?

    init(gate: AcceptGate, addressKey: @escaping @Sendable (SocketAddress?) -> String?) {
        self.gate = gate
        self.addressKey = addressKey
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = Self.unwrapInboundIn(data)
        let admitted = self.gate.accepted(channel, address: self.addressKey(channel.remoteAddress))
        context.fireChannelRead(data)
        // Closed after the server's acceptor has registered it (queued behind that on the channel's loop).
        if !admitted { channel.close(promise: nil) }
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
