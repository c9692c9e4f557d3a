import Logging
import NIOCore

/// Who ended a session.
public enum SessionCloser: String, Sendable {
    case client
    case backend
    case relay
}

/// The facts of one session, gathered while it runs and logged as one line when it ends. Holds no
/// payload and no credentials.
struct SessionSummary {
    var client: String
    var route: String
    var target: String
    var started: NIODeadline
    /// The fingerprint of the token that opened the session (never the token).
    var tokenFingerprint: String? = nil
    /// The proxies between client and relay when a PROXY header or forwarding header named the client.
    var via: String? = nil
    /// Time from the backend connect starting to it succeeding.
    var backendConnectMilliseconds: Int64 = 0
    /// The HTTP version the session's handshake came in: "1.1", or "2" for a stream of an HTTP/2 connection.
    var http = "1.1"
    var bytesToBackend: UInt64 = 0
    var bytesToClient: UInt64 = 0
    var closeCode: UInt16?
    var closedBy: SessionCloser?
    var reason: String?

    /// Records the first cause of the end; later ones (the other side closing in turn) are consequences.
    mutating func ending(by closer: SessionCloser, code: UInt16?, reason: String) {
        guard self.closedBy == nil else { return }
        self.closedBy = closer
        self.closeCode = code
        self.reason = reason
    }

    func log(to logger: Logger, now: NIODeadline) {
        let duration = (now - self.started).nanoseconds / 1_000_000
        logger.info(
            "session ended",
            metadata: [
                "client": "\(self.client)",
                "route": "\(self.route)",
                "target": "\(self.target)",
                "bytes_to_backend": "\(self.bytesToBackend)",
                "bytes_to_client": "\(self.bytesToClient)",
                "duration_ms": "\(duration)",
                "close_code": "\(self.closeCode.map(String.init) ?? "none")",
                "closed_by": "\(self.closedBy?.rawValue ?? "unknown")",
                "reason": "\(self.reason ?? "")",
                "token": "\(self.tokenFingerprint ?? "none")",
                "via": "\(self.via ?? "direct")",
                "backend_connect_ms": "\(self.backendConnectMilliseconds)",
                "http": "\(self.http)",
            ]
        )
    }
}
