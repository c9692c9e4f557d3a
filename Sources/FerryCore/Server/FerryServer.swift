import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Listens on every configured address and runs sessions until shut down.
///
/// As a ServiceLifecycle `Service`, `run()` binds, then waits for graceful shutdown (SIGTERM/SIGINT in
/// the `ferry` executable) or for its ``ServerLifetime`` to end; shutdown closes the listeners, asks
/// every session to close with 1001 "going away", and waits (bounded) for them to end. Tests use
/// ``start()`` and ``stop()`` directly.
public final class FerryServer: Service, Sendable {
    public let environment: RelayEnvironment
    let group: EventLoopGroup
    let listeners = NIOLockedValueBox<[BoundListener]>([])
    /// When ``start()`` bound the listeners: where the idle clock of `--exit-when-idle` and the
    /// deadline of `--accept-for` start.
    let startedAt = NIOLockedValueBox<NIODeadline?>(nil)
    let admin = NIOLockedValueBox<Channel?>(nil)
    let acceptGate: AcceptGate
    /// Returns freed memory to the system after load falls; runs from ``start()`` until the end.
    let trimmer = NIOLockedValueBox<MemoryTrimmer?>(nil)
    /// The configuration as the last reload left it (its routes and Origin rules are the live ones);
    /// nil until the first reload.
    let applied = NIOLockedValueBox<FerryConfiguration?>(nil)

    /// Builds the server's collaborators (``RelayEnvironment``); a certificate, key or file that cannot
    /// be loaded is a start-up error.
    public init(
        configuration: FerryConfiguration,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        accessLogger: Logger? = nil
    ) throws(ConfigurationError) {
        self.group = group
        // Sessions past --max-connections get 503; a little headroom of open connections lets those
        // answers go out, and past it the listener stops accepting altogether.
        self.acceptGate = AcceptGate(
            limit: Self.acceptLimit(maxConnections: configuration.limits.maxConnections),
            perAddressLimit: configuration.limits.maxConnectionsPerIP
        )
        self.environment = try RelayEnvironment(configuration: configuration, group: group, logger: logger, accessLogger: accessLogger)
        let metrics = self.environment.metrics
        self.environment.readiness.observe { metrics.setDraining($0 == .draining) }
    }

    /// Connections open at once before the listeners stop accepting: `--max-connections` and some
    /// headroom, so that the 503s past it still get out.
    static func acceptLimit(maxConnections: Int) -> Int {
        maxConnections + max(16, maxConnections / 10)
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
        var bound: [BoundListener] = []
        for address in self.environment.configuration.listeners {
            do {
                bound.append(try await self.bind(address))
            } catch {
                for listener in bound { await listener.close() }
                await self.environment.policy.authorizer?.shutdown()
                if let error = error as? ConfigurationError { throw error }
                throw ListenFailure.configurationError(flag: "--listen", value: address.description, error: error)
            }
        }
        self.listeners.withLockedValue { $0.append(contentsOf: bound) }
        self.startedAt.withLockedValue { $0 = $0 ?? .now() }
        let registry = self.environment.registry
        let loop = self.group.any()
        self.trimmer.withLockedValue { $0 = $0 ?? MemoryTrimmer(registry: registry, on: loop) }
        if let adminAddress = self.environment.configuration.adminListen {
            let channel: Channel
            do {
                let access = AdminAccess(token: self.environment.configuration.adminToken, address: adminAddress)
                if !access.servesSessions {
                    self.environment.logger.warning("the sessions API is off: --admin-listen is not a loopback address and no --admin-token is given")
                }
                channel = try await AdminServer(address: adminAddress, metrics: self.environment.metrics, registry: registry, access: access, group: self.group).start()
            } catch {
                // No half-started relay: the listeners bound so far close again.
                await self.closeListeners()
                self.stopTrimming()
                await self.environment.policy.authorizer?.shutdown()
                throw error
            }
            self.admin.withLockedValue { $0 = channel }
            self.environment.logger.info("admin listening", metadata: ["address": "\(channel.localAddress?.logDescription ?? "")"])
        }
        self.environment.readiness.set(.ready)
        let schemes = Self.schemes(self.environment.configuration.tls)
        for listener in bound {
            let shown = listener.address.unixPath == nil ? listener.channel.localAddress?.logDescription ?? "" : listener.address.description
            var metadata: Logger.Metadata = ["address": "\(shown)", "serves": "\(schemes)"]
            if listener.address.proxyProtocol { metadata["proxy_protocol"] = "required" }
            self.environment.logger.info("listening", metadata: metadata)
        }
        return bound.compactMap(\.channel.localAddress)
    }

    /// What the listening line says a listener serves, so an operator sees at a glance whether TLS is on.
    static func schemes(_ tls: ListenerTLSOptions?) -> String {
        guard let tls else { return "ws" }
        return tls.tlsOnly ? "wss" : "ws+wss"
    }

    func bind(_ address: ListenAddress) async throws -> BoundListener {
        switch address.endpoint {
        case .tcp(let host, let port):
            return try await self.bindTCP(address, host: host, port: port)
        case .unix(let path, let mode):
            return try await self.bindUnix(address, path: path, mode: mode)
        }
    }

    /// Closes the listeners, asks live sessions to close with 1001, and waits up to `timeout` for them.
    public func stop(timeout: TimeAmount = .seconds(10)) async {
        await self.windDown(.immediately(closeWait: timeout))
    }

    func stopTrimming() {
        self.trimmer.withLockedValue { trimmer in
            trimmer?.cancel()
            trimmer = nil
        }
    }

    /// Runs until graceful shutdown (SIGTERM), then drains: `/readyz` turns 503 at once; after
    /// `--drain-delay` the listeners close; live sessions go on until they end or `--drain-timeout`
    /// passes; then each gets 1001 "going away". Cancellation (SIGINT, or a second signal) cuts the
    /// waits short.
    ///
    /// With a ``ServerLifetime`` other than forever, run() also returns by itself once the lifetime
    /// ends (see ``waitForLifetime(_:)``); a shutdown or cancellation before that drains as above.
    public func run() async throws {
        if self.listeners.withLockedValue({ $0.isEmpty }) { try await self.start() }
        let lifetime = self.environment.configuration.lifetime
        if lifetime.isForever {
            try? await gracefulShutdown()
        } else if await self.waitForLifetime(lifetime) == .ended {
            await self.windDown(.lifetimeEnded)
            return
        }
        if Task.isCancelled {
            // SIGINT, or a second SIGTERM: no drain to announce. Sessions get 1001 on their way out.
            await self.windDown(.immediately(closeWait: .zero))
        } else {
            await self.windDown(.drain(delay: self.environment.limits.drainDelay, timeout: self.environment.limits.drainTimeout))
        }
    }

    /// How the server winds down.
    enum Ending {
        /// SIGTERM: `/readyz` turns 503 at once, the listeners close after `delay`, live sessions
        /// go on for up to `timeout`, then get 1001 and the close timeout to finish.
        case drain(delay: TimeAmount, timeout: TimeAmount)
        /// SIGINT or ``stop(timeout:)``: the listeners close and every session gets 1001 at once;
        /// waits up to `closeWait` for them to end.
        case immediately(closeWait: TimeAmount)
        /// A ``ServerLifetime`` ended: the listeners are closed and no session is left.
        case lifetimeEnded
    }

    /// The one way the server ends, whatever ends it. Waits on the registry's report that the last
    /// session is gone (``SessionRegistry/waitUntilEmpty()``), not on a poll, and each wait also
    /// ends when the task is cancelled.
    func windDown(_ ending: Ending) async {
        let logger = self.environment.logger
        let registry = self.environment.registry
        self.environment.readiness.set(.draining)
        switch ending {
        case .drain(let delay, let timeout):
            logger.info("draining", metadata: ["sessions": "\(registry.count)", "delay_ms": "\(delay.nanoseconds / 1_000_000)"])
            try? await Task.sleep(for: .nanoseconds(delay.nanoseconds))
            await self.closeListeners()
            // HTTP/2 clients learn now (GOAWAY) that no new stream will be served on their connection.
            self.environment.http2Connections.quiesceAll()
            logger.info("listeners closed; waiting for sessions", metadata: ["sessions": "\(registry.count)"])
            await self.waitForSessions(upTo: timeout)
            if registry.count > 0 {
                logger.info("drain timeout; closing sessions", metadata: ["sessions": "\(registry.count)"])
                registry.closeAll(code: 1001, reason: "going away")
                await self.waitForSessions(upTo: self.environment.limits.closeTimeout + .seconds(1))
            }
            logger.info("stopped")
        case .immediately(let closeWait):
            await self.closeListeners()
            if registry.count > 0 {
                logger.info("closing listeners and sessions at once", metadata: ["sessions": "\(registry.count)"])
                registry.closeAll(code: 1001, reason: "going away")
                await self.waitForSessions(upTo: closeWait)
            }
            logger.info("stopped")
        case .lifetimeEnded:
            await self.closeListeners()
            logger.info("stopped")
        }
        try? await self.admin.withLockedValue({ $0 })?.close()
        await self.environment.policy.authorizer?.shutdown()
        self.stopTrimming()
    }

    /// Where `/metrics` is served, once started.
    public var adminAddress: SocketAddress? { self.admin.withLockedValue { $0?.localAddress } }

    /// Closes the listeners (NIO removes the socket files of Unix ones); closing twice is harmless.
    func closeListeners() async {
        let listeners = self.listeners.withLockedValue { listeners in
            defer { listeners = [] }
            return listeners
        }
        for listener in listeners { await listener.close() }
    }

    /// Waits until no session is left, `timeout` passes, or the task is cancelled.
    func waitForSessions(upTo timeout: TimeAmount) async {
        let registry = self.environment.registry
        guard registry.count > 0, timeout > .zero else { return }
        await withTaskGroup(of: Void.self) { waits in
            waits.addTask { await registry.waitUntilEmpty() }
            waits.addTask { try? await Task.sleep(for: .nanoseconds(timeout.nanoseconds)) }
            await waits.next()
            waits.cancelAll()
        }
    }

    /// TCP listeners set TCP_NODELAY and SO_KEEPALIVE on each connection; Unix ones have no such options.
    /// - Parameter loop: the one loop that accepts and serves (a per-loop TCP listener); nil for the
    ///   whole group (NIO accepts on one loop and hands connections round the others).
    func bootstrap(proxyProtocol: Bool, unix: Bool, loop: EventLoop? = nil) -> ServerBootstrap {
        let environment = self.environment
        let bufferSize = environment.limits.bufferSize
        // Peers that speak for other clients are not limited per address at accept (see AcceptGate).
        let trusted = environment.configuration.trustedProxies
        let addressKey: @Sendable (SocketAddress?) -> String? = { peer in
            guard !proxyProtocol, let peer, let bytes = peer.addressBytes else { return nil }
            return trusted.contains(where: { $0.contains(bytes) }) ? nil : peer.limitKey
        }
        var bootstrap = ServerBootstrap(group: loop ?? self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelInitializer { [acceptGate] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptGateHandler(gate: acceptGate, addressKey: addressKey))
                }
            }
        if !unix {
            // Set on the listening socket, whose accepted sockets inherit both (Linux, the BSDs): two
            // system calls fewer per connection than setting them on each accepted channel.
            bootstrap = bootstrap
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .serverChannelOption(.socketOption(.so_keepalive), value: 1)
        }
        return bootstrap
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A client that half-closes after its request still gets the answer (HTTPHandshakeHandler).
                    try RelayChannelOptions.apply(to: channel, bufferSize: bufferSize, halfClosure: true, autoRead: true)
                    try ConnectionPipeline.configure(channel, environment: environment, proxyProtocol: proxyProtocol)
                }
            }
    }

}

/// A listener's channels (one per event loop for TCP on Linux, see `bindTCP`) and the address they
/// were bound for.
struct BoundListener: Sendable {
    let address: ListenAddress
    let channels: [Channel]

    init(address: ListenAddress, channels: [Channel]) {
        precondition(!channels.isEmpty, "a listener has at least one channel")
        self.address = address
        self.channels = channels
    }

    init(address: ListenAddress, channel: Channel) {
        self.init(address: address, channels: [channel])
    }

    /// The first channel: where the bound address is read.
    var channel: Channel { self.channels[0] }

    /// For a Unix listener NIO also removes the socket file (it made it, so it cleans up on close).
    func close() async {
        for channel in self.channels { try? await channel.close() }
    }
}

