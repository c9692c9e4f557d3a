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

/// `ferry connect --listen`: accepts local connections (TCP or Unix sockets) and gives each its own
/// WebSocket session, opened on the accepted connection's event loop. At most `--max-connections`
/// sessions at once: a connection beyond that is closed at accept, with a warning.
///
/// As a `Service` it runs until a graceful shutdown (SIGTERM), then drains: it stops accepting and
/// closes every session with 1001, waiting a bounded time for them to end.
public final class ConnectListener: Sendable {
    private let dialer: WebSocketDialer
    private let logger: Logger
    private let maxConnections: Int
    private let pools: PayloadBufferPools
    private let open = NIOLockedValueBox(0)
    private let channels = NIOLockedValueBox<[Channel]>([])
    /// The local channel of every session not yet ended, to reach its splice when draining.
    private let locals = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    private init(dialer: WebSocketDialer, group: EventLoopGroup, logger: Logger) {
        self.dialer = dialer
        self.pools = PayloadBufferPools(group: group)
        self.logger = logger
        self.maxConnections = dialer.configuration.maxConnections
    }

    /// Sessions open now.
    public var openSessions: Int { self.open.withLockedValue { $0 } }

    /// Binds every `--listen` address; throws a ``ConfigurationError`` naming the one that failed
    /// (after closing those already bound).
    public static func start(dialer: WebSocketDialer, group: EventLoopGroup, logger: Logger) async throws -> (ConnectListener, [SocketAddress]) {
        let listener = ConnectListener(dialer: dialer, group: group, logger: logger)
        var addresses: [SocketAddress] = []
        do {
            for address in dialer.configuration.listeners {
                let channel = try await listener.bind(address, group: group)
                listener.channels.withLockedValue { $0.append(channel) }
                if let local = channel.localAddress { addresses.append(local) }
                logger.info("listening", metadata: ["listen": "\(address)", "relay": "\(dialer.configuration.url)"])
            }
        } catch {
            await listener.stop()
            throw error
        }
        return (listener, addresses)
    }

    /// Stops accepting, asks every session to close (1001, after what was already read), and waits
    /// until they have ended or `timeout` has passed. Returns how many were still open then.
    @discardableResult
    public func drain(within timeout: TimeAmount) async -> Int {
        await self.stop()
        let locals = self.locals.withLockedValue { Array($0.values) }
        for local in locals {
            local.eventLoop.execute {
                if let handler = try? local.pipeline.syncOperations.handler(type: LocalSideHandler.self) {
                    handler.owner.stop()
                } else {
                    // Still opening its WebSocket: the session sees the local side gone and ends.
                    local.close(promise: nil)
                }
            }
        }
        let deadline = NIODeadline.now() + timeout
        while self.openSessions > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.openSessions
    }

    /// Closes the listeners; sessions under way go on until they end.
    public func stop() async {
        let channels = self.channels.withLockedValue { channels in
            defer { channels = [] }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }

    private func bind(_ address: ListenAddress, group: EventLoopGroup) async throws -> Channel {
        guard !address.proxyProtocol else {
            throw ConfigurationError(flag: "--listen", value: address.description, problem: "proxy-protocol applies to the relay's listeners only", expected: "ADDR:PORT or unix:/path")
        }
        let bufferSize = self.dialer.configuration.bufferSize
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try RelayChannelOptions.apply(to: channel, bufferSize: bufferSize, halfClosure: true, autoRead: false)
                    try channel.pipeline.syncOperations.addHandlers(EarlyLocalInput(), ActiveChannelStarter { [self] in self.accepted(channel) })
                }
            }
        do {
            switch address.endpoint {
            case .tcp(let host, let port):
                return try await bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1).bind(host: host, port: port).get()
            case .unix(let path, let mode):
                var info = stat()
                guard lstat(path, &info) != 0 else {
                    throw ConfigurationError(flag: "--listen", value: address.description, problem: "\(path) already exists", expected: "a free path (remove a stale socket left by an earlier run)")
                }
                let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
                guard chmod(path, mode_t(mode)) == 0 else {
                    try? await channel.close()
                    throw ConfigurationError(flag: "--listen", value: address.description, problem: "cannot set the socket's mode", expected: "a path this user owns")
                }
                return channel
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ListenFailure.configurationError(flag: "--listen", value: address.description, error: error)
        }
    }

    /// Runs on the accepted channel's event loop, once it is active.
    private func accepted(_ channel: Channel) {
        let admitted = self.open.withLockedValue { open in
            guard open < self.maxConnections else { return false }
            open += 1
            return true
        }
        guard admitted else {
            self.logger.warning("local connection refused: --max-connections reached", metadata: ["max_connections": "\(self.maxConnections)"])
            channel.close(promise: nil)
            return
        }
        let logger = self.logger
        let peer = channel.remoteAddress.map { "\($0)" } ?? "unix socket"
        let key = ObjectIdentifier(channel)
        self.locals.withLockedValue { $0[key] = channel }
        ConnectSession.start(local: channel, dialer: self.dialer, pools: self.pools).whenComplete { [self] result in
            self.locals.withLockedValue { _ = $0.removeValue(forKey: key) }
            self.open.withLockedValue { $0 -= 1 }
            switch result {
            case .success(let end):
                let metadata: Logger.Metadata = ["local": "\(peer)", "sent": "\(end.bytesSent)", "received": "\(end.bytesReceived)"]
                if end.isNormal {
                    logger.info("session ended: \(end)", metadata: metadata)
                } else {
                    logger.warning("session ended: \(end)", metadata: metadata)
                }
            case .failure(let error):
                logger.error("session not opened: \(error)", metadata: ["local": "\(peer)"])
            }
        }
    }
}

extension ConnectListener: Service {
    /// Accepts until a graceful shutdown, then drains for up to twice the close timeout (the close
    /// handshake, then the local side's pending writes) and a second. Cancelled, it only stops accepting.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            await self.stop()
            return
        }
        let open = self.openSessions
        self.logger.notice("stopping: closing \(open) session(s) with 1001; a second SIGTERM or SIGINT cuts them")
        let timeout = self.dialer.configuration.closeTimeout * 2 + .seconds(1)
        let left = await self.drain(within: timeout)
        if left > 0 { self.logger.warning("stopping: \(left) session(s) did not end within \(timeout.nanoseconds / 1_000_000) ms; cut") }
    }
}

/// Starts a local connection's session once the channel is active. The child initializer is too
/// early: NIO registers an accepted channel only after a hop to the listener's loop and back, and a
/// busy loop let a WebSocket open before that, so the session took the local side for closed.
private final class ActiveChannelStarter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let start: () -> Void

    init(start: @escaping () -> Void) {
        self.start = start
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start()
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ActiveChannelStarter: Sendable {}
