import NIOCore

/// Bounds on what one connection, and the process, may use. Every one has a default and each is shown in `--help`.
public struct Limits: Sendable, Equatable {
    /// Sessions open at once (upgraded or upgrading); the next handshake gets 503.
    public var maxConnections: Int = 10_000
    /// Connections open at once from one client address, handshakes included; 0 means no limit. A direct
    /// client's excess connections are closed at accept; a client named by a trusted proxy gets 503.
    public var maxConnectionsPerIP: Int = 0
    /// Handshakes per second from one client address (a burst of one second's worth); 0 means no limit. Over it: 429.
    public var maxHandshakesPerSecondPerIP: Int = 0
    /// Bytes queued per direction per session before reading from the other side pauses (plus the one
    /// read burst under way when it fills: under twice this in all).
    public var bufferSize: Int = 256 * 1024
    /// Largest WebSocket message from a client; 0 means no limit (payloads are streamed either way).
    public var maxMessageSize: Int = 0
    /// Time from accept until the upgrade is answered (backend connect included).
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Time allowed for the backend connection, capped at what is left of `handshakeTimeout`.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// A session with no data either way for this long is closed; zero disables.
    public var idleTimeout: TimeAmount = .hours(1)
    /// A ping is sent after this long without hearing from the client; zero disables.
    public var pingInterval: TimeAmount = .seconds(30)
    /// A client that has not answered a ping within this time is dropped.
    public var pingTimeout: TimeAmount = .seconds(30)
    /// Largest request head (request line and all header fields) of a handshake.
    public var maxHeaderSize: Int = 16 * 1024
    /// WebSocket sessions (and page requests) open at once on one HTTP/2 connection: the
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` Ferry announces (a client that opens more loses the connection).
    public var maxStreamsPerConnection: Int = 100
    /// After sending a close frame, how long to wait for the client's before dropping the connection.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// On SIGTERM: how long `/readyz` answers 503 before the listeners close, so load balancers notice.
    public var drainDelay: TimeAmount = .seconds(5)
    /// On SIGTERM: how long live sessions may go on after the listeners close; then they get 1001.
    public var drainTimeout: TimeAmount = .seconds(25)
    /// After a reload removes a session's route or changes its target, how long the session may go
    /// on before it gets close 1001 "route removed" (`--reload-grace`); nil: it goes on until it ends.
    public var reloadGrace: TimeAmount?

    public init() {}
}
