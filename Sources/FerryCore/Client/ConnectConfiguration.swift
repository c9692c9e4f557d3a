import NIOCore

/// Everything `ferry connect` needs, as plain validated values: where the relay is, what the upgrade
/// request carries, how TLS is checked, the session's timers and bounds, and where local connections
/// come from. Built by the command line (`FerryCommandLine/ConnectOptions.swift`) or by a test.
public struct ConnectConfiguration: Sendable {
    public var url: WebSocketURL
    /// Credentials and headers of the upgrade request.
    public var request: UpgradeRequestOptions
    public var tls: ConnectTLSOptions
    /// The HTTP proxy sessions tunnel through (`--proxy`, or the environment: see ``ProxySelection``);
    /// nil connects directly.
    public var proxy: ConnectProxy?
    /// Where local connections are accepted; empty: standard input and output carry one session.
    public var listeners: [ListenAddress]
    /// Local connections (sessions) open at once in `--listen` mode; more are closed at accept.
    public var maxConnections: Int = 1000
    /// A ping goes out after this long without hearing from the relay; zero disables. Load balancers
    /// cut connections that stay silent for a minute or so.
    public var pingInterval: TimeAmount = .seconds(30)
    /// A relay that has not answered a ping within this time is given up on.
    public var pingTimeout: TimeAmount = .seconds(30)
    /// TCP connect, proxy CONNECT, TLS handshake and upgrade together.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// After sending a close frame, how long to wait for the relay's.
    public var closeTimeout: TimeAmount = .seconds(5)
    /// Bytes queued per direction per session before reading from the other side pauses.
    public var bufferSize: Int = 256 * 1024
    /// Largest response head (status line and headers) accepted from the relay.
    public var maxResponseHeadSize: Int = 16 * 1024

    public init(url: WebSocketURL, request: UpgradeRequestOptions = UpgradeRequestOptions(), tls: ConnectTLSOptions = ConnectTLSOptions(), listeners: [ListenAddress] = []) {
        self.url = url
        self.request = request
        self.tls = tls
        self.listeners = listeners
    }

    /// The keepalive rules, in the relay's terms (no idle timeout: the user's program decides that).
    var keepaliveLimits: Limits {
        var limits = Limits()
        limits.idleTimeout = .zero
        limits.pingInterval = self.pingInterval
        limits.pingTimeout = self.pingTimeout
        return limits
    }
}

/// One `--header 'Name: value'`.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// What the upgrade request carries besides the handshake itself.
public struct UpgradeRequestOptions: Sendable, Equatable {
    /// Where the token travels in the upgrade request (`--token-in`).
    public enum TokenCarrier: String, Sendable, CaseIterable {
        /// `Sec-WebSocket-Protocol: binary, bearer.TOKEN`: Ferry's default, out of URLs and access logs.
        case subprotocol
        /// `Authorization: Bearer TOKEN`.
        case header
        /// `Cookie: token=TOKEN`.
        case cookie
        /// `?token=TOKEN` (websockify's token plugins): it lands in the server's access log.
        case query
    }

    public var token: String?
    public var tokenCarrier = TokenCarrier.subprotocol
    public var headers: [HeaderField] = []
    public var origin: String?
    /// `--basic-auth USER:PASSWORD`.
    public var basicAuth: HeaderField?

    public init() {}
}

/// How the relay's certificate is checked, and the client's own.
public struct ConnectTLSOptions: Sendable, Equatable {
    /// A PEM CA trusted besides the system store (`--ca`).
    public var caPath: String?
    /// The name sent in SNI and checked against the certificate, instead of the URL's host.
    public var serverName: String?
    public var clientCertificatePath: String?
    public var clientKeyPath: String?
    /// No verification at all (`--insecure`).
    public var insecure = false

    public init() {}
}
