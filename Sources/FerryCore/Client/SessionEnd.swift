/// How a `ferry connect` session ended, for the exit status, the message on standard error and the
/// session's log line.
public struct SessionEnd: Sendable, Equatable, CustomStringConvertible {
    public enum Cause: Sendable, Equatable {
        /// The relay's close frame: the first word, or its answer to ours. `code` is nil when the frame
        /// had none (1005).
        case closed(code: UInt16?, reason: String)
        /// No close frame from the relay: the connection was lost, pings or a close went unanswered,
        /// or the relay broke the protocol.
        case lost(String)
    }

    public var cause: Cause
    /// Our close frame (after local EOF) went first; the relay's was the answer.
    public var closedLocallyFirst: Bool
    /// Payload bytes sent to the relay and received from it.
    public var bytesSent: UInt64
    public var bytesReceived: UInt64

    public init(cause: Cause, closedLocallyFirst: Bool = false, bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0) {
        self.cause = cause
        self.closedLocallyFirst = closedLocallyFirst
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }

    /// Ended with 1000 (normal) or 1001 (going away), as a session is meant to end; or our close
    /// answered by one without a code (RFC 6455 §5.5.1 lets the answer leave it out).
    public var isNormal: Bool {
        guard case .closed(let code, _) = self.cause else { return false }
        return code == 1000 || code == 1001 || (code == nil && self.closedLocallyFirst)
    }

    public var exitStatus: ConnectExitStatus { self.isNormal ? .ended : .endedAbnormally }

    public var description: String {
        switch self.cause {
        case .closed(let code, let reason):
            let codeText = code.map { "\($0)" } ?? "1005 (no status code)"
            return reason.isEmpty ? "the relay closed the session: \(codeText)" : "the relay closed the session: \(codeText) \(reason)"
        case .lost(let why):
            return "the session ended without a close from the relay (1006): \(why)"
        }
    }
}
