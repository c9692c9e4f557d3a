import NIOSSL

/// Where a benchmark connection goes: straight to a backend (the baseline) or through a relay.
public struct Endpoint: Sendable {
    public var port: Int
    /// True when the port is a relay: the connection opens with a WebSocket handshake and frames data.
    public var isWebSocket: Bool
    /// Client TLS context for `wss://`; nil for plaintext.
    public var tls: NIOSSLContext?

    public init(port: Int, isWebSocket: Bool, tls: NIOSSLContext? = nil) {
        self.port = port
        self.isWebSocket = isWebSocket
        self.tls = tls
    }
}

/// Why a benchmark connection, transfer or relay start failed; the message names the step.
public enum BenchError: Error, CustomStringConvertible {
    case handshakeFailed(String)
    case connectionClosed
    case relayDidNotStart(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case .handshakeFailed(let why): return "WebSocket handshake failed: \(why)"
        case .connectionClosed: return "connection closed before the transfer finished"
        case .relayDidNotStart(let why): return "relay did not start: \(why)"
        case .timedOut(let what): return "timed out: \(what)"
        }
    }
}
