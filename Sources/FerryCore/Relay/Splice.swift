import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Pairs a WebSocket client with its backend connection: passes data between the two sides, decides
/// when either side may read (backpressure), and ends the session in order, whoever starts it.
///
/// Both channels live on one event loop, so the splice needs no locks. Backpressure follows NIO's
/// connect-proxy `GlueHandler`: a side's `read()` is held back while the other side is not writable,
/// and writability is set by a write-buffer high-water mark of `--buffer-size`, so a slow reader on
/// one side stops the relay from reading the other side instead of growing memory.
final class Splice {
    private enum Phase {
        case open
        /// The session is ending: data is no longer passed on, only closes are completed.
        case closing
        case ended
    }

    private var phase = Phase.open
    private var summary: SessionSummary
    private let logger: Logger
    private let metrics: FerryMetrics?
    private let onEnd: () -> Void
    /// `--record`; nil when off, so relaying without it costs one nil check per chunk.
    private let recorder: SessionRecorder?
    private var client: WebSocketSessionHandler?
    private var backend: BackendHandler?
    private var clientOpen = true
    private var backendOpen = true

    init(
        summary: SessionSummary,
        logger: Logger,
        metrics: FerryMetrics? = nil,
        recorder: SessionRecorder? = nil,
        onEnd: @escaping () -> Void
    ) {
        self.summary = summary
        self.logger = logger
        self.metrics = metrics
        self.recorder = recorder
        self.onEnd = onEnd
        metrics?.sessionStarted(route: summary.route)
    }

    /// Connects both handlers; they call back into the splice from then on.
    func attach(client: WebSocketSessionHandler, backend: BackendHandler) {
        self.client = client
        self.backend = backend
    }

    /// Payload bytes relayed so far each way (the sessions API).
    var byteCounts: (toBackend: UInt64, toClient: UInt64) {
        (self.summary.bytesToBackend, self.summary.bytesToClient)
    }

    // MARK: Data

    func clientData(_ buffer: ByteBuffer) {
        guard case .open = self.phase, let backend else { return }
        self.summary.bytesToBackend += UInt64(buffer.readableBytes)
        self.recorder?.clientData(buffer)
        backend.write(buffer)
    }

    func clientReadComplete() {
        self.backend?.flush()
    }

    func backendData(_ buffer: ByteBuffer) {
        guard case .open = self.phase, let client else { return }
        self.summary.bytesToClient += UInt64(buffer.readableBytes)
        self.recorder?.backendData(buffer)
        client.writeBinary(buffer)
    }

    func backendReadComplete() {
        self.client?.flush()
    }

    /// The client side may read while the backend can take more and while the client's own channel
    /// can (what a client sends can be answered on that channel: pongs, a close), or once data no
    /// longer flows. Without the second rule a client that sends pings and never reads grows the
    /// relay's queue of pongs without bound.
    var clientMayRead: Bool {
        guard case .open = self.phase else { return true }
        return (self.backend?.isWritable ?? true) && (self.client?.isWritable ?? true)
    }

    /// The client's reads are held because the backend cannot keep up: the client is not at fault
    /// if its pong is not seen.
    var clientReadsWaitOnBackend: Bool {
        guard case .open = self.phase else { return false }
        return !(self.backend?.isWritable ?? true)
    }

    var backendMayRead: Bool {
        guard case .open = self.phase else { return true }
        return self.client?.isWritable ?? true
    }

    func clientBecameWritable() {
        self.backend?.resumeReading()
        self.client?.resumeReading()
    }

    func backendBecameWritable() {
        self.client?.resumeReading()
    }

    // MARK: Endings

    /// The client sent a close frame (its handler answers it).
    func clientSentClose(code: UInt16?, reason: String) {
        self.summary.ending(by: .client, code: code ?? 1005, reason: reason.isEmpty ? "client closed" : "client closed: \(reason)")
        self.phase = .closing
        self.backend?.closeAfterPendingWrites()
    }

    /// The client broke the protocol: send the error's close code and hang up (RFC 6455 §7.1.7); the
    /// stream after a bad frame cannot be read, so no close reply would be seen.
    func clientViolatedProtocol(_ error: WebSocketProtocolError) {
        guard case .open = self.phase else { return }
        self.summary.ending(by: .client, code: error.closeCode, reason: error.reason)
        self.phase = .closing
        self.client?.sendCloseAndDisconnect(code: error.closeCode, reason: error.reason)
        self.backend?.closeAfterPendingWrites()
    }

    /// The relay ends the session (idle timeout, shutdown, revocation) with a close frame.
    func close(code: UInt16, reason: String, by closer: SessionCloser = .relay) {
        guard case .open = self.phase else { return }
        self.summary.ending(by: closer, code: code, reason: reason)
        self.phase = .closing
        self.client?.sendClose(code: code, reason: reason)
        self.backend?.closeAfterPendingWrites()
    }

    /// The client stopped answering pings: drop both connections without a close handshake.
    func dropUnresponsiveClient() {
        self.summary.ending(by: .relay, code: 1006, reason: "ping timeout")
        self.phase = .closing
        self.client?.closeNow()
        self.backend?.closeNow()
    }

    /// The backend finished sending (EOF) or failed. Data already read is queued ahead of the close frame.
    func backendEnded(error: Error?) {
        guard case .open = self.phase else { return }
        if let error {
            self.close(code: 1011, reason: "backend connection failed: \(Self.shortDescription(error))", by: .backend)
        } else {
            self.close(code: 1000, reason: "backend closed the connection", by: .backend)
        }
    }

    /// The client's TCP connection is gone (with or without a close handshake).
    func clientGone() {
        self.clientOpen = false
        if case .open = self.phase {
            self.summary.ending(by: .client, code: 1006, reason: "client connection lost")
            self.phase = .closing
            self.backend?.closeAfterPendingWrites()
        }
        self.finishIfBothClosed()
    }

    func backendGone() {
        self.backendOpen = false
        self.backendEnded(error: nil)
        self.finishIfBothClosed()
    }

    private func finishIfBothClosed() {
        guard !self.clientOpen, !self.backendOpen else { return }
        if case .ended = self.phase { return }
        self.phase = .ended
        let now = NIODeadline.now()
        self.summary.log(to: self.logger, now: now)
        self.recorder?.finish()
        self.metrics?.sessionEnded(
            route: self.summary.route,
            closeCode: self.summary.closeCode,
            closedBy: self.summary.closedBy?.rawValue ?? "unknown",
            duration: (now - self.summary.started).nanoseconds,
            bytesToBackend: self.summary.bytesToBackend,
            bytesToClient: self.summary.bytesToClient
        )
        self.client = nil
        self.backend = nil
        self.onEnd()
    }

    private static func shortDescription(_ error: Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        return "\(type(of: error))"
    }
}

@available(*, unavailable)
extension Splice: Sendable {}

/// The relay's backend connection.
typealias BackendHandler = ByteStreamHandler<Splice>

/// The backend side's reports, in the splice's own words.
extension Splice: ByteStreamOwner {
    func streamData(_ buffer: ByteBuffer) { self.backendData(buffer) }
    func streamReadComplete() { self.backendReadComplete() }
    func streamEnded(error: Error?) { self.backendEnded(error: error) }
    func streamGone() { self.backendGone() }
    func streamBecameWritable() { self.backendBecameWritable() }
    var streamMayRead: Bool { self.backendMayRead }
}
