import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Listens on every configured address and runs sessions until shut down.
///
/// As a ServiceLifecycle `Service`, `run()` binds, then waits for graceful shutdown (SIGTERM/SIGINT in
/// the `ferry` executable); shutdown closes the listeners, asks every session to close with 1001
/// "going away", and waits (bounded) for them to end. Tests use ``start()`` and ``stop()`` directly.
public final class FerryServer: Service, Sendable {
    public let environment: RelayEnvironment
    private let group: EventLoopGroup
    private let listeners = NIOLockedValueBox<[Channel]>([])
    private let admin = NIOLockedValueBox<Channel?>(nil)
    private let acceptGate: AcceptGate

    /// Loads certificates (TLS listeners, `tls://` backends); a problem with one is a start-up error.
    public init(
        configuration: FerryConfiguration,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        accessLogger: Logger? = nil
    ) throws(ConfigurationError) {
        self.group = group
        // Sessions past --max-connections get 503; a little headroom of open connections lets those
        // answers go out, and past it the listener stops accepting altogether.
        let maxConnections = configuration.limits.maxConnections
        self.acceptGate = AcceptGate(limit: maxConnections + max(16, maxConnections / 10))
        let tls = try configuration.tls.map { (options) throws(ConfigurationError) in
            try ServerTLSContextProvider(options: options, logger: logger)
        }
        let needsBackendTLS = configuration.routes.routes.contains { $0.target.usesTLS }
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
        let needsAuth = configuration.routes.routes.contains(where: UpgradePolicy.needsToken)
        self.environment = RelayEnvironment(
            configuration: configuration,
            registry: registry,
            payloadPools: PayloadBufferPools(group: group),
            tls: tls,
            backendTLS: needsBackendTLS ? try BackendTLSContexts(options: configuration.backendTLS) : nil,
            authorizer: needsAuth ? Authorizer(options: configuration.auth, tokenTables: tokenTables) : nil,
            staticFiles: try configuration.web.map { (options) throws(ConfigurationError) in try StaticFileServer(options: options) },
            logger: logger,
            accessLogger: accessLogger
        )
        let metrics = self.environment.metrics
        self.environment.readiness.observe { metrics.setDraining($0 == .draining) }
    }

    /// The counters served on `--admin-listen`.
    public var metrics: FerryMetrics { self.environment.metrics }

    /// What can be reloaded without a restart (for a ``ReloadService``).
    public var reloadables: [any Reloadable] {
        var reloadables: [any Reloadable] = []
        if let tls = self.environment.tls { reloadables.append(tls) }
        reloadables.append(contentsOf: self.environment.policy.authorizer?.tokenTables ?? [])
        return reloadables
    }

    /// Binds every listen address; returns the bound addresses (port 0 resolved). A failure to bind any
    /// address closes those already bound and throws a ``ConfigurationError`` naming the address.
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        try await self.environment.policy.authorizer?.prepare()
        var bound: [Channel] = []
        for address in self.environment.configuration.listeners {
            do {
                bound.append(try await self.bootstrap(proxyProtocol: address.proxyProtocol).bind(host: address.host, port: address.port).get())
            } catch {
                for channel in bound { try? await channel.close() }
                throw ConfigurationError(flag: "--listen", value: address.description, problem: "cannot listen: \(Self.describe(error))")
            }
        }
        self.listeners.withLockedValue { $0.append(contentsOf: bound) }
        if let adminAddress = self.environment.configuration.adminListen {
            let channel = try await AdminServer(address: adminAddress, metrics: self.environment.metrics, group: self.group).start()
            self.admin.withLockedValue { $0 = channel }
            self.environment.logger.info("admin listening", metadata: ["address": "\(channel.localAddress?.logDescription ?? "")"])
        }
        self.environment.readiness.set(.ready)
        let addresses = bound.compactMap(\.localAddress)
        for address in addresses {
            self.environment.logger.info("listening", metadata: ["address": "\(address.logDescription)"])
        }
        return addresses
    }

    /// Closes the listeners, asks live sessions to close with 1001, and waits up to `timeout` for them.
    public func stop(timeout: TimeAmount = .seconds(10)) async {
        self.environment.readiness.set(.draining)
        await self.closeListeners()
        self.environment.registry.closeAll(code: 1001, reason: "going away")
        await self.waitForSessions(upTo: timeout)
        try? await self.admin.withLockedValue({ $0 })?.close()
    }

    /// Runs until graceful shutdown (SIGTERM), then drains: `/readyz` turns 503 at once; after
    /// `--drain-delay` the listeners close; live sessions go on until they end or `--drain-timeout`
    /// passes; then each gets 1001 "going away". Cancellation (SIGINT, or a second signal) cuts the
    /// waits short.
    public func run() async throws {
        if self.listeners.withLockedValue({ $0.isEmpty }) { try await self.start() }
        try? await gracefulShutdown()
        let limits = self.environment.limits
        let logger = self.environment.logger
        self.environment.readiness.set(.draining)
        logger.info("draining", metadata: ["sessions": "\(self.environment.registry.count)", "delay_ms": "\(limits.drainDelay.nanoseconds / 1_000_000)"])
        try? await Task.sleep(for: .nanoseconds(limits.drainDelay.nanoseconds))
        await self.closeListeners()
        logger.info("listeners closed; waiting for sessions", metadata: ["sessions": "\(self.environment.registry.count)"])
        await self.waitForSessions(upTo: limits.drainTimeout)
        if self.environment.registry.count > 0 {
            logger.info("drain timeout; closing sessions", metadata: ["sessions": "\(self.environment.registry.count)"])
            self.environment.registry.closeAll(code: 1001, reason: "going away")
            await self.waitForSessions(upTo: limits.closeTimeout + .seconds(1))
        }
        try? await self.admin.withLockedValue({ $0 })?.close()
        logger.info("stopped")
    }

    /// Where `/metrics` is served, once started.
    public var adminAddress: SocketAddress? { self.admin.withLockedValue { $0?.localAddress } }

    private func closeListeners() async {
        let channels = self.listeners.withLockedValue { channels in
            defer { channels = [] }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }

    /// Waits until no session is left, `timeout` passes, or the task is cancelled.
    private func waitForSessions(upTo timeout: TimeAmount) async {
        let deadline = NIODeadline.now() + timeout
        while self.environment.registry.count > 0 && NIODeadline.now() < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func bootstrap(proxyProtocol: Bool) -> ServerBootstrap {
        let environment = self.environment
        let bufferSize = environment.limits.bufferSize
        return ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelInitializer { [acceptGate] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptGateHandler(gate: acceptGate))
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: bufferSize / 2, high: bufferSize))
            .childChannelOption(.recvAllocator, value: RelayReadSizes.allocator(bufferSize: bufferSize))
            .childChannelOption(.maxMessagesPerRead, value: RelayReadSizes.readsPerBurst)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try ConnectionPipeline.configure(channel, environment: environment, proxyProtocol: proxyProtocol)
                }
            }
    }

    private static func describe(_ error: Error) -> String {
        if let error = error as? IOError {
            return error.description.split(separator: ":").last.map { $0.trimmingSpacesAndLowercased } ?? "\(error)"
        }
        return "\(error)"
    }
}

extension Substring {
    fileprivate var trimmingSpacesAndLowercased: String {
        String(self.drop { $0 == " " }).lowercased()
    }
}
