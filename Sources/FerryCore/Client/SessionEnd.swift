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
    /// Payload bytes sent to the relay and received from it.
    public var bytesSent: UInt64
    public var bytesReceived: UInt64

    public init(cause: Cause, bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0) {
        self.cause = cause
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }

    /// Ended with 1000 (normal) or 1001 (going away), as a session is meant to end.
    public var isNormal: Bool {
        if case .closed(let code, _) = self.cause { return code == 1000 || code == 1001 }
        return false
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
