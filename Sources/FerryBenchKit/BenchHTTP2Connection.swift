import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL

/// One HTTP/2 connection to a relay (TLS, ALPN `h2`), on which WebSocket sessions are opened as
/// streams with extended CONNECT (RFC 8441). Each stream is a ``BenchConnection`` driven exactly like
/// an HTTP/1.1 one, so the two are measured by the same client code.
public final class BenchHTTP2Connection: Sendable {
    public let channel: Channel
    private let multiplexer: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>
    private let port: Int

    /// The client's windows: large, so the client's flow control is not what is measured.
    static let window = 4 * 1024 * 1024

    private init(channel: Channel, multiplexer: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>, port: Int) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.port = port
    }

    public static func connect(port: Int, group: EventLoopGroup) async throws -> BenchHTTP2Connection {
        let loop = group.next()
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.certificateVerification = .none
        tlsConfiguration.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tlsConfiguration)
        let settingsSeen = loop.makePromise(of: Void.self)
        let deadline = loop.scheduleTask(in: .seconds(10)) { settingsSeen.fail(BenchError.timedOut("HTTP/2 connect and SETTINGS")) }
        defer { deadline.cancel() }
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .initialWindowSize, value: Self.window),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 * 1024),
            HTTP2Setting(parameter: .maxFrameSize, value: 64 * 1024),
        ]
        connection.targetWindowSize = Self.window * 4
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = Self.window
        stream.outboundBufferSizeHighWatermark = 256 * 1024
        stream.outboundBufferSizeLowWatermark = 128 * 1024
        let (connectionSettings, streamSettings) = (connection, stream)
        let configured = loop.makePromise(of: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>.self)
        // The HTTP/2 handlers go in before the connect completes: the server sends its SETTINGS as
        // soon as the TLS handshake is done, and bytes that came before them would be lost.
        let connecting = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    let multiplexer = try sync.configureHTTP2Pipeline(
                        mode: .client,
                        connectionConfiguration: connectionSettings,
                        streamConfiguration: streamSettings
                    ) { $0.eventLoop.makeSucceededVoidFuture() }
                    try sync.addHandler(SettingsWaiter(seen: settingsSeen))
                    configured.succeed(NIOLoopBound(multiplexer, eventLoop: channel.eventLoop))
                }
            }
        let channel: Channel
        do {
            channel = try await connecting.connect(host: "127.0.0.1", port: port).get()
        } catch {
            configured.fail(error)
            settingsSeen.fail(error)
            throw error
        }
        let multiplexer = try await configured.futureResult.get()
        do {
            try await settingsSeen.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return BenchHTTP2Connection(channel: channel, multiplexer: multiplexer, port: port)
    }

    /// Opens a WebSocket session as a new stream and waits for its 200.
    public func openSession(path: String = "/") async throws -> BenchConnection {
        let answered = self.channel.eventLoop.makePromise(of: Void.self)
        let multiplexer = self.multiplexer
        let authority = "localhost:\(self.port)"
        let stream = try await self.channel.eventLoop.flatSubmit {
            multiplexer.value.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        ExtendedConnectHandler(path: path, authority: authority, answered: answered),
                        ClientDriver(isWebSocket: true),
                    ])
                }
            }
        }.get()
        let timeout = stream.eventLoop.scheduleTask(in: .seconds(10)) { answered.fail(BenchError.timedOut("extended CONNECT")) }
        defer { timeout.cancel() }
        do {
            try await answered.futureResult.get()
        } catch {
            try? await stream.close()
            throw error
        }
        return try await BenchConnection.wrap(stream)
    }

    public func close() async {
        try? await self.channel.close()
    }
}

/// Completes when the server's first SETTINGS frame has come (extended CONNECT needs its
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`).
private final class SettingsWaiter: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private var seen: EventLoopPromise<Void>?

    init(seen: EventLoopPromise<Void>) {
        self.seen = seen
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .settings(.settings) = Self.unwrapInboundIn(data).payload {
            self.seen?.succeed(())
            self.seen = nil
        }
        context.fireChannelRead(data)
    }
}

/// A client stream's extended CONNECT, then its DATA frames as bytes (masking is the driver's).
private final class ExtendedConnectHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let path: String
    private let authority: String
    private var answered: EventLoopPromise<Void>?

    init(path: String, authority: String, answered: EventLoopPromise<Void>) {
        self.path = path
        self.authority = authority
        self.answered = answered
    }

    func channelActive(context: ChannelHandlerContext) {
        self.sendRequest(context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.sendRequest(context: context) }
    }

    private var sent = false

    private func sendRequest(context: ChannelHandlerContext) {
        guard !self.sent else { return }
        self.sent = true
        let headers = HPACKHeaders([
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
            (":path", self.path), (":authority", self.authority), ("sec-websocket-version", "13"),
        ])
        context.writeAndFlush(Self.wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .headers(let headers):
            if headers.headers.first(name: ":status") == "200" {
                self.answered?.succeed(())
            } else {
                self.answered?.fail(BenchError.handshakeFailed("status \(headers.headers.first(name: ":status") ?? "?")"))
            }
            self.answered = nil
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data, bytes.readableBytes > 0 {
                context.fireChannelRead(Self.wrapInboundOut(bytes))
            }
        default:
            break
        }
    }


    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(Self.unwrapOutboundIn(data))))), promise: promise)
    }

    /// Ends the stream as a browser does (END_STREAM; the relay answers with its own), not with a
    /// reset: a relay counts resets, and a client resetting thousands of streams is an attacker
    /// (CVE-2023-44487). A stream still open a second later is reset after all.
    private var closing: EventLoopPromise<Void>?

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, context.channel.isActive, self.closing == nil else {
            context.close(mode: mode, promise: promise)
            return
        }
        let closing = context.eventLoop.makePromise(of: Void.self)
        self.closing = closing
        if let promise { closing.futureResult.cascade(to: promise) }
        context.writeAndFlush(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(1)) {
            loopBound.value.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.answered?.fail(BenchError.timedOut("the stream closed before its answer"))
        self.answered = nil
        self.closing?.succeed(())
        self.closing = nil
        context.fireChannelInactive()
    }
}
