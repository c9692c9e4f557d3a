import NIOCore

/// Pairs a local connection (a socket accepted by `--listen`, or standard input and output) with its
/// WebSocket session to the relay: passes data between the two, decides when either side may read
/// (backpressure), and ends the session in order, whichever side starts.
///
/// Both channels live on one event loop, so no locks. Backpressure follows NIO's connect-proxy
/// `GlueHandler`, as the relay's own splice does: a side's `read()` is held back while the other side
/// is not writable, with a write-buffer high-water mark of `--buffer-size` on each channel.
///
/// Endings. WebSocket has no half-close, so the first side to finish ends the session:
/// - local EOF: everything read is already queued ahead of a close frame (1000); what the relay still
///   sends is written locally until its close arrives (bounded by the close timeout);
/// - the relay's close, or its connection lost: what it sent is written locally, then the local side
///   is closed.
final class ClientSplice {
    private enum Phase {
        case open
        /// The local side finished; our close frame is out, waiting for the relay's.
        case localEnded
        /// The relay finished (close frame, lost connection, protocol error, ping timeout); the local
        /// side gets what was received, then is closed.
        case relayEnded
        /// Both channels are closed and the end was reported.
        case finished
    }

    private var phase = Phase.open
    private var local: LocalSideHandler?
    private var relay: WebSocketSideHandler?
    private var localOpen = true
    private var relayOpen = true
    private var cause: SessionEnd.Cause?
    private var closedLocallyFirst = false
    private var bytesSent: UInt64 = 0
    private var bytesReceived: UInt64 = 0
    private let onEnd: (SessionEnd) -> Void

    init(onEnd: @escaping (SessionEnd) -> Void) {
        self.onEnd = onEnd
    }

    func attach(local: LocalSideHandler, relay: WebSocketSideHandler) {
        self.local = local
        self.relay = relay
    }

    // MARK: Data

    func localData(_ buffer: ByteBuffer) {
        guard case .open = self.phase, let relay else { return }
        self.bytesSent += UInt64(buffer.readableBytes)
        relay.writeBinary(buffer)
    }

    func localReadComplete() {
        self.relay?.flush()
    }

    /// Delivered while the local side can still write: until the relay's close, even after ours.
    func relayData(_ buffer: ByteBuffer) {
        guard self.localOpen, let local else { return }
        switch self.phase {
        case .open, .localEnded, .relayEnded:
            self.bytesReceived += UInt64(buffer.readableBytes)
            local.write(buffer)
        case .finished:
            preconditionFailure("data from the relay after the session finished")
        }
    }

    func relayReadComplete() {
        self.local?.flush()
    }

    /// The local side may read while the WebSocket channel can take more.
    var localMayRead: Bool {
        guard case .open = self.phase else { return true }
        return self.relay?.isWritable ?? true
    }

    /// The relay side may read while the local side can take more. Not also "while the WebSocket
    /// channel can": the relay holds its reads from us while its own channel to us is full, so if we
    /// held ours while our upload queue is full, a busy echo would stop both ends for good (each
    /// waiting for the other to read). Pongs do not need the rule: one at most waits for writability
    /// (``WebSocketSideHandler``).
    var relayMayRead: Bool {
        guard self.localOpen else { return true }
        return self.local?.isWritable ?? true
    }

    /// The relay's reads are held because the local side does not keep up: the relay is not at fault
    /// if its pong is not seen.
    var relayReadsWaitOnLocal: Bool {
        self.localOpen && !(self.local?.isWritable ?? true)
    }

    func localBecameWritable() {
        self.relay?.resumeReading()
    }

    func relayBecameWritable() {
        self.local?.resumeReading()
        self.relay?.resumeReading()
    }

    // MARK: Endings

    /// Local EOF (`error` nil) or a failed local connection: a close frame follows what was read.
    func localEnded(error: Error?) {
        guard case .open = self.phase else { return }
        self.phase = .localEnded
        if error == nil {
            self.relay?.sendClose(code: 1000, reason: "")
        } else {
            self.relay?.sendClose(code: 1001, reason: "local connection failed")
        }
    }

    /// `ferry connect` is stopping (SIGTERM): the session closes as after local EOF, but with 1001
    /// ("going away"), so the relay's side knows the client left rather than finished. Whatever the
    /// local side sends after this is dropped; the relay's answer closes the local side.
    func stop() {
        guard case .open = self.phase else { return }
        self.phase = .localEnded
        self.relay?.sendClose(code: 1001, reason: "ferry connect is stopping")
    }

    func localGone() {
        self.localOpen = false
        self.localEnded(error: nil)
        self.finishIfBothClosed()
    }

    /// The relay's close frame arrived (its handler has answered it, or it answered ours).
    func relayClosed(code: UInt16?, reason: String) {
        self.relayEnded(.closed(code: code, reason: reason))
    }

    /// The relay broke the protocol (its handler sends the close code and hangs up).
    func relayViolatedProtocol(_ error: WebSocketProtocolError) {
        self.relayEnded(.lost("the relay broke the WebSocket protocol: \(error.reason)"))
    }

    /// Pings went unanswered, or our close did: given up on without a close handshake.
    func relayUnresponsive(_ why: String) {
        self.relayEnded(.lost(why))
        self.relay?.closeNow()
    }

    func relayGone() {
        self.relayOpen = false
        self.relayEnded(.lost("the connection to the relay was lost"))
        self.finishIfBothClosed()
    }

    private func relayEnded(_ cause: SessionEnd.Cause) {
        switch self.phase {
        case .open, .localEnded:
            self.cause = cause
            if case .localEnded = self.phase { self.closedLocallyFirst = true }
            self.phase = .relayEnded
            self.local?.closeAfterPendingWrites()
        case .relayEnded, .finished:
            break
        }
    }

    private func finishIfBothClosed() {
        guard !self.localOpen, !self.relayOpen else { return }
        switch self.phase {
        case .relayEnded:
            self.phase = .finished
        case .finished:
            return
        case .open, .localEnded:
            preconditionFailure("both channels closed but the relay side has not ended")
        }
        self.local = nil
        self.relay = nil
        let end = SessionEnd(cause: self.cause ?? .lost("unknown"), closedLocallyFirst: self.closedLocallyFirst, bytesSent: self.bytesSent, bytesReceived: self.bytesReceived)
        self.onEnd(end)
    }
}

@available(*, unavailable)
extension ClientSplice: Sendable {}

/// `ferry connect`'s local connection (an accepted socket, or standard input and output).
typealias LocalSideHandler = ByteStreamHandler<ClientSplice>

/// The local side's reports, in the splice's own words.
extension ClientSplice: ByteStreamOwner {
    func streamData(_ buffer: ByteBuffer) { self.localData(buffer) }
    func streamReadComplete() { self.localReadComplete() }
    func streamEnded(error: Error?) { self.localEnded(error: error) }
    func streamGone() { self.localGone() }
    func streamBecameWritable() { self.localBecameWritable() }
    var streamMayRead: Bool { self.localMayRead }
}
