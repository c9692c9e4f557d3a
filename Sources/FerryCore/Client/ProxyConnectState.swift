import NIOCore

/// Where a CONNECT through a proxy stands, and the moves it may make. ``ProxyConnectHandler`` moves
/// only through ``move(to:)``: a move outside the table is a bug, stopped by an assertion in debug
/// builds and refused in release builds (the handler then fails the session rather than tunnel in a
/// state nobody planned for).
enum ProxyConnectState {
    /// The TCP connection to the proxy is not up yet.
    case idle
    /// CONNECT is sent; the answer's head collects here (bounded by the handler).
    case awaitingResponse(ByteBuffer)
    /// A 2xx came: the tunnel is open. Bytes that followed the head wait to be passed on.
    case established(rest: ByteBuffer)
    /// The handler has left the pipeline and passed on `channelActive` and the rest.
    case handedOver
    /// The proxy refused, broke off or never answered; the session is failed.
    case failed

    /// The legal moves: send, answer, hand over, and `failed` from anything before the tunnel is open.
    func allows(_ next: ProxyConnectState) -> Bool {
        switch (self, next) {
        case (.idle, .awaitingResponse), (.awaitingResponse, .awaitingResponse), (.awaitingResponse, .established), (.established, .handedOver):
            return true
        case (.idle, .failed), (.awaitingResponse, .failed):
            return true
        default:
            return false
        }
    }

    /// Moves to `next` if the table allows it; returns false (and asserts) if not.
    mutating func move(to next: ProxyConnectState) -> Bool {
        guard self.allows(next) else {
            assertionFailure("illegal proxy CONNECT move: \(self.name) → \(next.name)")
            return false
        }
        self = next
        return true
    }

    var name: String {
        switch self {
        case .idle: return "idle"
        case .awaitingResponse: return "awaitingResponse"
        case .established: return "established"
        case .handedOver: return "handedOver"
        case .failed: return "failed"
        }
    }
}
