import Logging
import NIOCore

/// What every connection of one server shares: configuration, the upgrade decision, the backend
/// connector and the session registry. Immutable and `Sendable`: each child channel gets the same one.
public struct RelayEnvironment: Sendable {
    public let configuration: FerryConfiguration
    public let policy: UpgradePolicy
    public let connector: BackendConnector
    public let registry: SessionRegistry
    /// What `/readyz` answers.
    public let readiness = Readiness()
    /// Counters for `/metrics` on the admin listener.
    public let metrics = FerryMetrics()
    /// `--max-handshakes-per-second-per-ip`; nil when off.
    let handshakeRate: HandshakeRateLimiter?
    public let payloadPools: PayloadBufferPools
    /// The listeners' TLS context; nil without `--tls-cert`.
    public let tls: ServerTLSContextProvider?
    /// Files for plain GET/HEAD requests; nil without `--web`.
    public let staticFiles: StaticFileServer?
    public let logger: Logger
    /// Where session-end lines go (`--access-log`); the main logger by default.
    public let accessLogger: Logger
    /// Writes `--record` files; nil without `--record`.
    public let recording: RecordingSink?
    /// What plain HTTP requests get.
    let plainRequests: PlainRequestAnswers
    /// What each connection's handshake uses.
    let handshake: HandshakeServices

    public init(
        configuration: FerryConfiguration,
        registry: SessionRegistry,
        payloadPools: PayloadBufferPools,
        tls: ServerTLSContextProvider?,
        backendTLS: BackendTLSContexts?,
        authorizer: Authorizer?,
        staticFiles: StaticFileServer?,
        logger: Logger,
        accessLogger: Logger? = nil
    ) {
        self.configuration = configuration
        self.policy = UpgradePolicy(
            routes: configuration.routes,
            originPolicy: configuration.originPolicy,
            authorizer: authorizer,
            basicCredentials: configuration.auth.basicCredentials
        )
        self.connector = BackendConnector(limits: configuration.limits, tls: backendTLS)
        self.registry = registry
        self.payloadPools = payloadPools
        self.tls = tls
        let rate = configuration.limits.maxHandshakesPerSecondPerIP
        self.handshakeRate = rate > 0 ? HandshakeRateLimiter(perSecond: rate) : nil
        self.staticFiles = staticFiles
        self.accessLogger = accessLogger ?? logger
        self.logger = logger
        self.recording = configuration.recordPrefix.map { RecordingSink(prefix: $0) }
        self.plainRequests = PlainRequestAnswers(
            readiness: self.readiness,
            staticPages: configuration.staticPages,
            staticFiles: staticFiles,
            basicCredentials: configuration.auth.basicCredentials
        )
        self.handshake = HandshakeServices(
            policy: self.policy,
            connector: self.connector,
            registry: registry,
            limits: configuration.limits,
            metrics: self.metrics,
            handshakeRate: self.handshakeRate,
            plainRequests: self.plainRequests,
            trustedProxies: configuration.trustedProxies,
            trustsUnixSocketPeers: configuration.trustsUnixSocketPeers,
            sessionParts: SessionAssembly.Shared(
                registry: registry,
                limits: configuration.limits,
                metrics: self.metrics,
                accessLogger: self.accessLogger,
                recording: self.recording
            ),
            payloadPools: payloadPools,
            logger: logger
        )
    }

    public var limits: Limits { self.configuration.limits }
}

extension SocketAddress {
    /// `203.0.113.7:51234`, `[2001:db8::1]:51234` or `unix`, for logs.
    var logDescription: String {
        switch self {
        case .v4: return "\(self.ipAddress ?? "?"):\(self.port ?? 0)"
        case .v6: return "[\(self.ipAddress ?? "?")]:\(self.port ?? 0)"
        case .unixDomainSocket: return "unix"
        }
    }

    /// What per-address limits (`--max-connections-per-ip`, handshakes per second, failed tokens) count
    /// under: the IP address. A client on a Unix listener has no address of its own (unless a PROXY
    /// header names one), so all of them share the one key "unix" and those limits treat them as one client.
    var limitKey: String {
        switch self {
        case .v4, .v6: return self.ipAddress ?? "unknown"
        case .unixDomainSocket: return "unix"
        }
    }
}
