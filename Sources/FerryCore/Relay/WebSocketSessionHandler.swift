import NIOCore
import NIOWebSocket

/// The client side of a spliced session: payload goes to the splice, backend bytes come back as binary
/// messages. Answers pings, runs the close handshake, pings a quiet client and closes an idle session.
/// Holds back `read()` while the backend, or the client's own channel, cannot take more.
///
/// Pings are answered once per read burst, with the most recent ping's payload (RFC 6455 §5.5.3
/// allows it), so a ping flood costs one pong per read instead of one per ping.
final class WebSocketSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketInbound
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum CloseState {
        case open
        /// A close frame went out; waiting (a bounded time) for the client's.
        case closeSent
        /// The close handshake is over; the connection is being closed.
        case finished
    }

    private let splice: Splice
    private let limits: Limits
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var needsFlush = false
    /// The payload of the latest ping of this read burst, answered at read-complete.
    private var pendingPong: ByteBuffer?
    private var closeState = CloseState.open
    private var timers: WebSocketTimers
    private let expiresIn: TimeAmount?
    private var expiryTimer: Scheduled<Void>?

    /// - Parameter expiresIn: when the session's token expires (`--jwt-enforce-expiry-on-session`).
    init(splice: Splice, limits: Limits, expiresIn: TimeAmount? = nil) {
        self.splice = splice
        self.limits = limits
        self.expiresIn = expiresIn
        self.timers = WebSocketTimers(limits: limits)
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    /// The last payload byte either way (the sessions API's last activity).
    var lastData: NIODeadline { self.timers.keepalive.lastData }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.scheduleKeepalive()
        if let expiresIn = self.expiresIn {
            self.expiryTimer = context.eventLoop.assumeIsolated().scheduleTask(in: expiresIn) { [self] in
                self.splice.close(code: 1008, reason: "token expired")
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.expiryTimer?.cancel()
        self.timers.cancelAll()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        switch Self.unwrapInboundIn(data) {
        case .data(let buffer):
            // A ping from the client is not proof that it reads: only data, pongs and a close count.
            self.timers.keepalive.heardFromClient(at: now)
            self.timers.keepalive.dataSeen(at: now)
            if case .open = self.closeState { self.splice.clientData(buffer) }
        case .ping(let payload):
            if case .open = self.closeState { self.pendingPong = payload }
        case .pong:
            self.timers.keepalive.pongReceived(at: now)
            // The timer waits for the ping timeout; with the answer in, the next ping is due sooner.
            self.scheduleKeepalive()
        case .close(let code, let reason):
            self.receivedClose(code: code, reason: reason, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.splice.clientReadComplete()
        if let pong = self.pendingPong {
            self.pendingPong = nil
            if case .open = self.closeState {
                context.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: pong)), promise: nil)
                self.needsFlush = true
            }
        }
        if self.needsFlush {
            self.needsFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? WebSocketProtocolError {
            self.splice.clientViolatedProtocol(error)
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // WebSocket has no half-close: a client that closed its sending side is gone (client
        // connections allow half-closure only so that a request before it is still answered).
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeState = .finished
        self.timers.cancelAll()
        self.splice.clientGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.splice.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.readGate.admit(allowed: self.splice.clientMayRead) { context.read() }
    }

    private func receivedClose(code: UInt16?, reason: String, context: ChannelHandlerContext) {
        switch self.closeState {
        case .open:
            // Answer with the same code (RFC 6455 §5.5.1), then close the TCP connection: the server closes first.
            self.closeState = .finished
            self.splice.clientSentClose(code: code, reason: reason)
            let payload: ByteBuffer =
                code.map { WebSocketClosePayload.make(code: $0, reason: "", allocator: context.channel.allocator) }
                ?? context.channel.allocator.buffer(capacity: 0)
            self.writeCloseThenDisconnect(payload, context: context)
        case .closeSent:
            self.closeState = .finished
            context.close(promise: nil)
        case .finished:
            break
        }
    }

    // MARK: Called by the splice

    func writeBinary(_ buffer: ByteBuffer) {
        self.timers.keepalive.dataSeen(at: .now())
        self.context?.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: buffer)), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func resumeReading() {
        if self.readGate.release(allowed: self.splice.clientMayRead) { self.context?.read() }
    }

    /// Starts the close handshake from the relay's side.
    func sendClose(code: UInt16, reason: String) {
        guard case .open = self.closeState, let context else { return }
        self.closeState = .closeSent
        self.resumeReading()
        let payload = WebSocketClosePayload.make(code: code, reason: reason, allocator: context.channel.allocator)
        context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
        self.armCloseTimer(context: context)
    }

    /// Sends a close frame and closes the connection once it is written, without waiting for a reply.
    func sendCloseAndDisconnect(code: UInt16, reason: String) {
        guard case .open = self.closeState, let context else { return }
        self.closeState = .finished
        let payload = WebSocketClosePayload.make(code: code, reason: reason, allocator: context.channel.allocator)
        self.writeCloseThenDisconnect(payload, context: context)
    }

    func closeNow() {
        self.closeState = .finished
        self.context?.close(promise: nil)
    }

    // MARK: Timers

    private func writeCloseThenDisconnect(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        self.armCloseTimer(context: context)
    }

    /// A client that does not finish the close handshake (or does not read our close) is dropped.
    private func armCloseTimer(context: ChannelHandlerContext) {
        self.timers.armClose(in: self.limits.closeTimeout, on: context.eventLoop) {
            context.close(promise: nil)
        }
    }

    private func scheduleKeepalive() {
        guard let context else { return }
        self.timers.scheduleKeepalive(on: context.eventLoop) { [self] in
            self.keepaliveTimerFired()
        }
    }

    private func keepaliveTimerFired() {
        guard case .open = self.closeState, let context else { return }
        // Reads held back because the backend is not keeping up excuse the client (a pong could not
        // be seen); held because the client does not read its own channel, they do not. The idle
        // timeout still ends a session that stays stuck.
        let excused = self.readGate.pending && self.splice.clientReadsWaitOnBackend
        switch self.timers.keepaliveDue(at: .now(), peerExcused: excused) {
        case .none:
            break
        case .sendPing:
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketTimers.ping(allocator: context.channel.allocator)), promise: nil)
        case .closeIdle:
            self.splice.close(code: 1000, reason: "idle timeout")
            return
        case .dropUnresponsive:
            self.splice.dropUnresponsiveClient()
            return
        }
        self.scheduleKeepalive()
    }
}

@available(*, unavailable)
extension WebSocketSessionHandler: Sendable {}
