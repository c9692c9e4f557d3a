import NIOCore
import NIOPosix
import NIOSSL

/// Opens backend connections on the client's own event loop, so the two channels of a session never
/// need a lock or a thread hop.
///
/// The channel comes back with auto-read off: a backend that speaks first (a VNC server sends its
/// version at once) must not have its bytes read before the client has its 101 and a splice exists.
///
/// TCP backends get TCP_NODELAY (NIO's default too, set here so it does not rest on a default): the
/// splice already writes a whole read burst per flush, so Nagle could only hold back the small
/// messages of interactive sessions by a round trip to the backend.
public struct BackendConnector: Sendable {
    /// `--connect-timeout` and `--buffer-size`, as a reload leaves them.
    private let liveLimits: LiveLimits
    /// Contexts for `tls://` targets; nil when no route has one.
    public var tls: BackendTLSContexts?

    public var limits: Limits { self.liveLimits.current }

    public init(limits: Limits, tls: BackendTLSContexts? = nil) {
        self.init(limits: LiveLimits(limits), tls: tls)
    }

    public init(limits: LiveLimits, tls: BackendTLSContexts? = nil) {
        self.liveLimits = limits
        self.tls = tls
    }

    /// Why a backend connection failed, as the handshake answers it.
    public enum Failure: Error, Equatable {
        case timedOut
        case unreachable(String)
        case tlsFailed(String)

        var rejection: HandshakeRejection {
            switch self {
            case .timedOut: return .init(.gatewayTimeout, "the backend did not accept the connection in time")
            case .unreachable: return .init(.badGateway, "could not connect to the backend")
            case .tlsFailed: return .init(.badGateway, "TLS handshake with the backend failed")
            }
        }
    }

    /// Connects; for `tls://` targets the future completes once the TLS handshake is done.
    /// - Parameters:
    ///   - proxyHeader: bytes written first on the connection (a PROXY v2 header), before TLS.
    ///   - timeout: the connect's own limit when it is shorter than `--connect-timeout` (what is
    ///     left of the handshake budget).
    ///   - attempt: collects the channels the connect opens, so the handshake can call it off.
    public func connect(
        to target: BackendTarget,
        options: RouteOptions = RouteOptions(),
        proxyHeader: ByteBuffer? = nil,
        timeout: TimeAmount? = nil,
        attempt: BackendConnectAttempt? = nil,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<Channel> {
        let limits = self.limits
        let bufferSize = limits.bufferSize
        let connectTimeout = min(timeout ?? limits.connectTimeout, limits.connectTimeout)
        let boundAttempt = attempt.map { NIOLoopBound($0, eventLoop: eventLoop) }
        /// What every backend channel gets first: its options, its place in the attempt, the preface.
        @Sendable func prepare(_ channel: Channel, halfClosure: Bool) throws {
            try RelayChannelOptions.apply(to: channel, bufferSize: bufferSize, halfClosure: halfClosure, autoRead: false)
            boundAttempt?.value.opened(channel)
            if let proxyHeader { try channel.pipeline.syncOperations.addHandler(PrefaceWriter(preface: proxyHeader)) }
        }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try prepare(channel, halfClosure: true) }
            }
        let future: EventLoopFuture<Channel>
        switch target {
        case .tcp(let host, let port):
            let tcpBootstrap = bootstrap
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            future = Self.connect(tcpBootstrap, host: host, port: port)
        case .tls(let host, let port):
            guard let contexts = self.tls else {
                return eventLoop.makeFailedFuture(Failure.tlsFailed("no backend TLS context"))
            }
            let context = options.verifyBackendTLS ? contexts.verifying : contexts.unverified
            let handshake = eventLoop.makePromise(of: Void.self)
            // No half-closure over TLS: with it NIOSSL takes the backend's close_notify for input
            // closed and never finishes its own shutdown, so closing waited for NIOSSL's 5 s timeout.
            let tlsBootstrap = bootstrap
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try prepare(channel, halfClosure: false)
                        // SNI and hostname verification need a name; for an IP address NIOSSL checks the IP SANs.
                        let serverName = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(BackendTLSHandshakeHandler(done: handshake, timeout: connectTimeout))
                    }
                }
            let connected = Self.connect(tlsBootstrap, host: host, port: port)
            connected.whenFailure { handshake.fail($0) }
            future = connected.flatMap { channel in
                handshake.futureResult
                    .flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw Failure.tlsFailed(String(describing: error))
                    }
                    .map { channel }
            }
        case .dynamic:
            // The upgrade decision replaces a dynamic target with the checked one before connecting.
            return eventLoop.makeFailedFuture(Failure.unreachable("dynamic target was not resolved"))
        case .unix(let path):
            future = bootstrap.connect(unixDomainSocketPath: path)
        }
        return future.flatMapErrorThrowing { error in
            if let error = error as? Failure { throw error }
            if let error = error as? ChannelError, case .connectTimeout = error { throw Failure.timedOut }
            throw Failure.unreachable(String(describing: error))
        }
    }

    /// Connects to an IP address literal directly, and resolves only real host names. NIO's
    /// `connect(host:port:)` runs every host, literals included, through getaddrinfo on a Dispatch
    /// thread and Happy Eyeballs timers: for a literal that was a thread hop there and back (two
    /// futex wake-ups, two eventfd writes, a timer) on every handshake, about a third of a
    /// sequential handshake's time on loopback.
    private static func connect(_ bootstrap: ClientBootstrap, host: String, port: Int) -> EventLoopFuture<Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: host, port: port)
    }
}

/// A backend connect under way, which the handshake calls off when its client leaves: the channels
/// the connect opened (one per address tried) are closed, which fails the connect at once instead of
/// leaving it to its timeout. Used on the client's event loop only.
public final class BackendConnectAttempt {
    private var channels: [Channel] = []
    private var cancelled = false

    public init() {}

    /// Called off (the client left, or the handshake's budget ran out).
    public var isCancelled: Bool { self.cancelled }

    fileprivate func opened(_ channel: Channel) {
        if self.cancelled {
            channel.close(promise: nil)
        } else {
            self.channels.append(channel)
        }
    }

    public func cancel() {
        self.cancelled = true
        for channel in self.channels { channel.close(promise: nil) }
        self.channels = []
    }
}

@available(*, unavailable)
extension BackendConnectAttempt: Sendable {}

/// The options of a relayed channel, set directly on the channel as it is made. A bootstrap's
/// `channelOption` list applies each option through a future of its own (a promise, a closure and a
/// callback per option, on every connection): 6 % of a handshake's CPU in the relay's profile
/// (BENCHMARKS.md). Socket options that cost a system call stay with the bootstrap or the listening
/// socket.
enum RelayChannelOptions {
    /// - Parameters:
    ///   - halfClosure: whether a peer's FIN is reported as input closed (off for TLS, see
    ///     ``BackendConnector``).
    ///   - autoRead: off for a backend until the client has its 101.
    static func apply(to channel: Channel, bufferSize: Int, halfClosure: Bool, autoRead: Bool) throws {
        guard let options = channel.syncOptions else { return }
        if !autoRead { try options.setOption(.autoRead, value: false) }
        try options.setOption(.allowRemoteHalfClosure, value: halfClosure)
        try options.setOption(.writeBufferWaterMark, value: .init(low: bufferSize / 2, high: bufferSize))
        try options.setOption(.recvAllocator, value: RelayReadSizes.allocator(bufferSize: bufferSize))
        try options.setOption(.maxMessagesPerRead, value: RelayReadSizes.readsPerBurst)
    }
}

/// Read sizes for relayed traffic: small for idle chatter, growing to 128 KiB for bulk transfers, never
/// beyond half the per-direction buffer. A read burst (`readsPerBurst` reads) happens before the
/// writability check can stop it, so the two together bound what one burst adds past `--buffer-size`.
enum RelayReadSizes {
    static let readsPerBurst: UInt = 2

    static func allocator(bufferSize: Int) -> AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: max(4096, min(128 * 1024, bufferSize / 2)))
    }
}

/// Writes a few bytes as soon as the connection is up, ahead of everything behind it in the pipeline
/// (a TLS handshake included), then leaves.
final class PrefaceWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let preface: ByteBuffer

    init(preface: ByteBuffer) {
        self.preface = preface
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(self.preface), promise: nil)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension PrefaceWriter: Sendable {}
