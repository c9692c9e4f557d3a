import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens WebSocket sessions to the relay: TCP connect (to the proxy, then CONNECT through it, when
/// there is one), TLS for `wss://`, the upgrade request and its 101, all within `--connect-timeout`. Built once (the TLS context is loaded at start-up, so a bad
/// `--ca` is a start-up error) and used for every session, on the event loop it is given: the loop
/// of the local connection, so a session's two channels need no lock or thread hop.
///
/// The channel comes back with auto-read off and the ``UpgradeResponseReader`` still in place,
/// holding any bytes that followed the 101; the session adds its handlers and then removes it.
public struct WebSocketDialer: Sendable {
    public let configuration: ConnectConfiguration
    private let tls: NIOSSLContext?

    public init(configuration: ConnectConfiguration) throws(ConfigurationError) {
        try configuration.request.check()
        self.configuration = configuration
        if configuration.url.secure {
            self.tls = try ConnectTLSContext.make(configuration.tls)
        } else {
            for (flag, given) in [("--ca", configuration.tls.caPath), ("--server-name", configuration.tls.serverName), ("--client-cert", configuration.tls.clientCertificatePath), ("--client-key", configuration.tls.clientKeyPath)] {
                if let given {
                    throw ConfigurationError(flag: flag, value: given, problem: "applies only to wss:// URLs", expected: "a wss:// URL, or no TLS flags")
                }
            }
            if configuration.tls.insecure {
                throw ConfigurationError(flag: "--insecure", value: "", problem: "applies only to wss:// URLs", expected: "a wss:// URL")
            }
            self.tls = nil
        }
    }

    /// Where the relay is, for messages: `host:port`.
    public var address: String {
        let url = self.configuration.url
        return url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
    }

    /// Connects on `eventLoop`; the future fails with a ``ConnectFailure``.
    public func connect(on eventLoop: EventLoop) -> EventLoopFuture<Channel> {
        let configuration = self.configuration
        let bufferSize = configuration.bufferSize
        let address = self.address
        let request = ClientUpgradeRequest(url: configuration.url, options: configuration.request)
        let upgraded = eventLoop.makePromise(of: Void.self)
        let tls = self.tls
        let serverName = Self.serverName(configuration)
        let proxy = configuration.proxy
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try RelayChannelOptions.apply(to: channel, bufferSize: bufferSize, halfClosure: false, autoRead: false)
                    let sync = channel.pipeline.syncOperations
                    if let proxy {
                        // First: TLS and the upgrade request start only once the tunnel is open.
                        try sync.addHandler(ProxyConnectHandler(proxy: proxy, target: address, maxHeadSize: configuration.maxResponseHeadSize, failed: upgraded))
                    }
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try sync.addHandler(UpgradeResponseReader(request: request, address: address, maxHeadSize: configuration.maxResponseHeadSize, upgraded: upgraded))
                }
            }
        let timeout = configuration.connectTimeout
        let timedOutAddress = proxy.map { "\(address) through proxy \($0.address)" } ?? address
        let deadline = eventLoop.scheduleTask(in: timeout) {
            upgraded.fail(ConnectFailure.timedOut(address: timedOutAddress, after: timeout))
        }
        upgraded.futureResult.whenComplete { _ in deadline.cancel() }
        // With a proxy, the relay's name is the proxy's to resolve.
        let (host, port) = proxy.map { ($0.host, $0.port) } ?? (configuration.url.host, configuration.url.port)
        let connected: EventLoopFuture<Channel>
        if let literal = try? SocketAddress(ipAddress: host, port: port) {
            connected = bootstrap.connect(to: literal)
        } else {
            connected = bootstrap.connect(host: host, port: port)
        }
        let failure = { @Sendable (error: Error) -> ConnectFailure in
            Self.failure(connecting: error, address: timedOutAddress, proxy: proxy, timeout: timeout)
        }
        connected.whenComplete { result in
            switch result {
            case .success(let channel):
                upgraded.futureResult.whenFailure { _ in channel.close(promise: nil) }
            case .failure(let error):
                upgraded.fail(failure(error))
            }
        }
        return connected.and(upgraded.futureResult).map { channel, _ in channel }.flatMapErrorThrowing { error in
            // `and` fails with whichever failed first: the upgrade's reason is the one to report.
            throw (error as? ConnectFailure) ?? failure(error)
        }
    }

    /// SNI and the verified name: `--server-name`, else the URL's host name. An IP address is not sent
    /// in SNI (RFC 6066 forbids it); NIOSSL then checks the certificate's IP addresses.
    static func serverName(_ configuration: ConnectConfiguration) -> String? {
        if let name = configuration.tls.serverName { return name }
        let host = configuration.url.host
        return (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// The TCP connect's failure: to the proxy when there is one, else to the relay.
    private static func failure(connecting error: Error, address: String, proxy: ConnectProxy?, timeout: TimeAmount) -> ConnectFailure {
        if let failure = error as? ConnectFailure { return failure }
        if let error = error as? ChannelError, case .connectTimeout = error { return .timedOut(address: address, after: timeout) }
        if let proxy { return .proxyUnreachable(proxy: proxy.address, reason: Self.describe(error)) }
        return .unreachable(address: address, reason: Self.describe(error))
    }

    /// `connection refused`, not NIO's `connection reset (error set): Connection refused) (errno: 111)`.
    /// Also for errors after the connection is up (``UpgradeResponseReader``).
    static func describe(_ error: Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return Self.describe(first.error) }
            return "the host name does not resolve"
        }
        if error is SocketAddressError { return "the host name does not resolve" }
        return "\(error)"
    }
}
