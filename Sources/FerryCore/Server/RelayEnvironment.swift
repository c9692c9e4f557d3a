import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What every connection of one server shares: configuration, the upgrade decision, the backend
/// connector and the session registry. Immutable and `Sendable`: each child channel gets the same one.
public struct RelayEnvironment: Sendable {
    public let configuration: FerryConfiguration
    public let policy: UpgradePolicy
    public let connector: BackendConnector
    /// Limits and timeouts, which a reload may change for what comes after it.
    public let liveLimits: LiveLimits
    /// `--max-handshakes-per-second-per-ip`, whose rate a reload may change.
    let handshakeRate: HandshakeRateLimiter
    public let registry: SessionRegistry
    /// What `/readyz` answers.
    public let readiness = Readiness()
    /// The HTTP/2 connections open, for the drain's GOAWAY.
    public let http2Connections = HTTP2ConnectionSet()
    /// Counters for `/metrics` on the admin listener.
    public let metrics = FerryMetrics()
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
    /// What each connection's handshake uses.
    let handshake: HandshakeServices

    /// Builds every collaborator of one server, in one place: certificates (listeners and `tls://`
    /// backends), the session registry, token files (a removed token ends its sessions), the
    /// authorizer, `--web` files, the upgrade decision, the backend connector and what each
    /// connection's handshake uses. A file that cannot be loaded is a start-up error.
    init(
        configuration: FerryConfiguration,
        group: EventLoopGroup,
        logger: Logger,
        accessLogger: Logger? = nil
    ) throws(ConfigurationError) {
        let tls = try configuration.tls.map { (options) throws(ConfigurationError) in
            try ServerTLSContextProvider(options: options, logger: logger)
        }
        // The names a page may be served from and still connect by the same-host rule (OriginPolicy).
        var configuration = configuration
        configuration.originPolicy.serverNames += Self.ownNames(tls: tls)
        for route in configuration.routes.routes where !route.options.verifyBackendTLS {
            logger.warning("backend TLS certificates are not verified on this route", metadata: ["route": "\(route.path)"])
        }
        let registry = SessionRegistry(
            maxConnections: configuration.limits.maxConnections,
            maxConnectionsPerAddress: configuration.limits.maxConnectionsPerIP
        )
        var tokenTables: [TokenFileSource] = []
        for (path, layout) in [(configuration.auth.tokenFilePath, TokenFileSource.Layout.lines), (configuration.auth.tokenFilenamesPath, .fileNames)] {
            guard let path else { continue }
            tokenTables.append(
                try TokenFileSource(path: path, layout: layout, logger: logger) { revoked in
                    // A token removed from the file ends its live sessions.
                    registry.closeSessions(tokenFingerprints: revoked, code: 1008, reason: "token revoked")
                }
            )
        }
        let needsAuth = configuration.routes.routes.contains(where: \.needsAuthorization)
        let needsBackendTLS = configuration.routes.routes.contains { $0.targets.contains(where: \.usesTLS) }
        let backendTLS = needsBackendTLS ? try BackendTLSContexts(options: configuration.backendTLS) : nil
        let redis = try configuration.auth.redis.flatMap { (endpoint) throws(ConfigurationError) -> RedisTokenSource? in
            guard needsAuth else { return nil }
            return try RedisTokenSource(
                endpoint: endpoint,
                caPath: configuration.auth.redisCAPath,
                group: group,
                logger: logger,
                inUse: { registry.tokenFingerprintsInUse },
                onRevoked: { revoked in
                    // A key deleted or expired in Redis ends its live sessions, on every replica.
                    registry.closeSessions(tokenFingerprints: revoked, code: 1008, reason: "token revoked")
                }
            )
        }
        let callback = try configuration.auth.callback.flatMap { (options) throws(ConfigurationError) -> AuthCallback? in
            guard needsAuth else { return nil }
            return try AuthCallback(options: options, group: group, logger: logger)
        }
        let revalidation = callback.flatMap { callback -> AuthRevalidation? in
            guard let interval = callback.options.revalidate else { return nil }
            return AuthRevalidation(
                interval: interval,
                callback: callback,
                eventLoop: group.next(),
                logger: logger,
                liveSessions: { Set(registry.liveSessions.keys) },
                close: { id in _ = registry.closeSession(id: id, code: 1008, reason: "authorization revoked") }
            )
        }
        let authorizer =
            needsAuth
            ? Authorizer(options: configuration.auth, tokenTables: tokenTables, redis: redis, callback: callback, revalidation: revalidation) : nil
        let staticFiles = try configuration.web.map { (options) throws(ConfigurationError) in try StaticFileServer(options: options) }
        let payloadPools = PayloadBufferPools(group: group)
        self.configuration = configuration
        self.policy = UpgradePolicy(
            routes: configuration.routes,
            originPolicy: configuration.originPolicy,
            authorizer: authorizer,
            basicCredentials: configuration.auth.basicCredentials
        )
        let liveLimits = LiveLimits(configuration.limits)
        self.liveLimits = liveLimits
        self.connector = BackendConnector(limits: liveLimits, tls: backendTLS)
        self.registry = registry
        self.payloadPools = payloadPools
        self.tls = tls
        let rate = configuration.limits.maxHandshakesPerSecondPerIP
        let handshakeRate = HandshakeRateLimiter(perSecond: rate)
        self.handshakeRate = handshakeRate
        self.staticFiles = staticFiles
        self.accessLogger = accessLogger ?? logger
        self.logger = logger
        self.recording = configuration.recordPrefix.map { RecordingSink(prefix: $0) }
        let plainRequests = PlainRequestAnswers(
            readiness: self.readiness,
            staticPages: configuration.staticPages,
            staticFiles: staticFiles,
            basicCredentials: configuration.auth.basicCredentials
        )
        self.handshake = HandshakeServices(
            policy: self.policy,
            connector: self.connector,
            registry: registry,
            pools: BackendPools(registry: registry, metrics: self.metrics),
            liveLimits: liveLimits,
            metrics: self.metrics,
            handshakeRate: handshakeRate,
            plainRequests: plainRequests,
            trustedProxies: configuration.trustedProxies,
            trustsUnixSocketPeers: configuration.trustsUnixSocketPeers,
            sessionParts: SessionAssembly.Shared(
                registry: registry,
                liveLimits: liveLimits,
                metrics: self.metrics,
                accessLogger: self.accessLogger,
                recording: self.recording
            ),
            payloadPools: payloadPools,
            logger: logger
        )
    }

    /// The limits as the last reload left them (the configuration's until then).
    public var limits: Limits { self.liveLimits.current }

    /// The machine's host name and the DNS names of the listeners' certificates (as they are at start).
    static func ownNames(tls: ServerTLSContextProvider?) -> [String] {
        var names: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count - 1) == 0 {
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !name.isEmpty { names.append(name.lowercased()) }
        }
        for certificate in tls?.leafCertificates ?? [] {
            names += ClientIdentity(certificate: certificate).dnsNames.map { $0.lowercased() }
        }
        return names
    }
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
