import NIOCore
import NIOWebSocket

/// The relay side of a `ferry connect` session, after the 101: payload goes to the splice, local
/// bytes go out as binary messages (masked by ``MaskingFrameEncoder`` below it). Answers pings,
/// pings a quiet relay and gives up on one that does not answer, and runs the close handshake as
/// the client: the relay's close is answered and the relay is left to hang up first (RFC 6455
/// §7.1.1), for the close timeout at most; after our close, the relay's answer ends the handshake
/// and we hang up. Holds back `read()` while the local side, or this channel, cannot take more.
///
/// Pings are answered once per read burst with the latest ping's payload, as the relay does.
final class WebSocketSideHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketInbound
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum CloseState {
        case open
        /// Our close frame went out; waiting (a bounded time) for the relay's.
        case closeSent
        /// The relay's close arrived (and was answered); waiting (a bounded time) for it to hang up.
        case closeReceived
    }

    private let splice: ClientSplice
    private let closeTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var pendingPong: ByteBuffer?
    private var closeState = CloseState.open
    private var timers: WebSocketTimers

    init(splice: ClientSplice, keepalive: Limits, closeTimeout: TimeAmount) {
        self.splice = splice
        self.closeTimeout = closeTimeout
        self.timers = WebSocketTimers(limits: keepalive)
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.scheduleKeepalive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timers.cancelAll()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        switch Self.unwrapInboundIn(data) {
        case .data(let buffer):
            self.timers.keepalive.heardFromClient(at: now)
            self.splice.relayData(buffer)
        case .ping(let payload):
            if case .open = self.closeState { self.pendingPong = payload }
        case .pong:
            self.timers.keepalive.pongReceived(at: now)
            self.scheduleKeepalive()
        case .close(let code, let reason):
            self.receivedClose(code: code, reason: reason, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.splice.relayReadComplete()
        self.writePendingPong(context: context)
    }

    /// Answers the latest ping once the channel can take it (RFC 6455 §5.5.3 lets an endpoint answer
    /// only the most recent one), so a relay that pings and never reads queues one pong at most.
    private func writePendingPong(context: ChannelHandlerContext) {
        guard let pong = self.pendingPong, context.channel.isWritable else { return }
        self.pendingPong = nil
        if case .open = self.closeState {
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: pong)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? WebSocketProtocolError {
            // The stream after a bad frame cannot be read: send the code and hang up (§7.1.7).
            self.splice.relayViolatedProtocol(error)
            let payload = WebSocketClosePayload.make(code: error.closeCode, reason: error.reason, allocator: context.channel.allocator)
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            self.armCloseTimer(context: context)
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // No half-close in WebSocket: a relay that stopped sending is gone.
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timers.cancelAll()
        self.splice.relayGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.writePendingPong(context: context)
            self.splice.relayBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.readGate.admit(allowed: self.splice.relayMayRead) { context.read() }
    }

    private func receivedClose(code: UInt16?, reason: String, context: ChannelHandlerContext) {
        switch self.closeState {
        case .open:
            // Answer with the same code (§5.5.1), then let the relay hang up first.
            self.closeState = .closeReceived
            let payload = code.map { WebSocketClosePayload.make(code: $0, reason: "", allocator: context.channel.allocator) } ?? context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
            self.armCloseTimer(context: context)
            self.splice.relayClosed(code: code, reason: reason)
        case .closeSent:
            // The answer to ours: the handshake is over, nothing more will be read.
            self.closeState = .closeReceived
            self.splice.relayClosed(code: code, reason: reason)
            context.close(promise: nil)
        case .closeReceived:
            break
        }
    }

    // MARK: Called by the splice

    func writeBinary(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: buffer)), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func resumeReading() {
        if self.readGate.release(allowed: self.splice.relayMayRead) { self.context?.read() }
    }

    /// Starts the close handshake from our side, behind everything already written.
    func sendClose(code: UInt16, reason: String) {
        guard case .open = self.closeState, let context else { return }
        self.closeState = .closeSent
        let payload = WebSocketClosePayload.make(code: code, reason: reason, allocator: context.channel.allocator)
        context.writeAndFlush(Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
        self.resumeReading()
        self.armCloseTimer(context: context)
    }

    func closeNow() {
        self.context?.close(promise: nil)
    }

    // MARK: Timers

    /// A relay that does not finish the close handshake, or does not hang up after it, is dropped.
    private func armCloseTimer(context: ChannelHandlerContext) {
        let timeout = self.closeTimeout
        self.timers.armClose(in: timeout, on: context.eventLoop) { [self] in
            if case .closeSent = self.closeState {
                self.splice.relayUnresponsive("the relay did not answer the close within \(timeout.nanoseconds / 1_000_000) ms")
            }
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
        // Reads that wait on the local side excuse the relay: a pong could not be seen.
        let excused = self.readGate.pending && self.splice.relayReadsWaitOnLocal
        switch self.timers.keepaliveDue(at: .now(), peerExcused: excused) {
        case .none, .closeIdle:
            break
        case .sendPing:
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketTimers.ping(allocator: context.channel.allocator)), promise: nil)
        case .dropUnresponsive:
            self.splice.relayUnresponsive("the relay did not answer a ping within \(self.timers.keepalive.pingTimeout.nanoseconds / 1_000_000) ms")
            return
        }
        self.scheduleKeepalive()
    }
}

@available(*, unavailable)
extension WebSocketSideHandler: Sendable {}
