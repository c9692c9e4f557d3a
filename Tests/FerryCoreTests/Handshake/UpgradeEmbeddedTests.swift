import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import FerryCore

/// Stands in for ``BackendConnector``: each connect is remembered with a promise the test completes by
/// hand, with an `EmbeddedChannel` on the client's loop or with the error the connector would give.
/// Only touched on the embedded loop's thread.
private final class HeldConnects: BackendConnecting, @unchecked Sendable {
    struct Request {
        var target: BackendTarget
        var timeout: TimeAmount?
        var promise: EventLoopPromise<Channel>
    }

    private(set) var requests: [Request] = []

    func connect(
        to target: BackendTarget,
        options: RouteOptions,
        proxyHeader: ByteBuffer?,
        timeout: TimeAmount?,
        attempt: BackendConnectAttempt?,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<Channel> {
        let promise = eventLoop.makePromise(of: Channel.self)
        self.requests.append(Request(target: target, timeout: timeout, promise: promise))
        return promise.futureResult
    }
}

/// A client connection as ``ConnectionPipeline`` builds it, on an `EmbeddedChannel` with a read counter
/// at the head; its handshake handler has the server's ``HandshakeServices`` with ``HeldConnects`` as
/// the connector, so an upgrade goes all the way to the 101 without a socket. Keepalive is off, so
/// moving the clock fires only the handshake's timers.
private final class UpgradeConnection {
    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let reads = EmbeddedReadCounter()
    let connects = HeldConnects()
    let registry: SessionRegistry

    init(handshakeTimeout: TimeAmount = .seconds(10)) throws {
        var limits = Limits()
        limits.handshakeTimeout = handshakeTimeout
        limits.pingInterval = .zero
        limits.idleTimeout = .zero
        self.channel = EmbeddedChannel(loop: self.loop)
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: [Route(path: "/ws", target: .tcp(host: "127.0.0.1", port: 5900))],
            limits: limits
        )
        let environment = try RelayEnvironment(configuration: configuration, group: self.loop, logger: EmbeddedWire.logger)
        self.registry = environment.registry
        try ConnectionPipeline.configure(self.channel, environment: environment)
        let sync = self.channel.pipeline.syncOperations
        let built = try sync.handler(type: HTTPHandshakeHandler.self)
        var services = built.services
        services.connector = self.connects
        try sync.addHandler(HTTPHandshakeHandler(services: services, httpHandlers: built.httpHandlers), position: .after(built))
        sync.removeHandler(built, promise: nil)
        try sync.addHandler(self.reads, position: .first)
        self.channel.connect(to: try SocketAddress(ipAddress: "198.51.100.20", port: 40000), promise: nil)
        self.loop.run()
    }

    func send(_ buffer: ByteBuffer) throws {
        try self.channel.writeInbound(buffer)
        self.loop.run()
    }

    func send(_ text: String) throws {
        try self.send(ByteBuffer(string: text))
    }

    func response() throws -> EmbeddedHTTPResponse? {
        try EmbeddedHTTPResponse.written(by: self.channel)
    }

    /// Completes the one backend connect with a new backend channel on the client's loop.
    @discardableResult
    func backendConnects() throws -> EmbeddedChannel {
        let request = try #require(self.connects.requests.first)
        let backend = EmbeddedChannel(loop: self.loop)
        backend.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5900), promise: nil)
        request.promise.succeed(backend)
        self.loop.run()
        return backend
    }

    func backendFails(_ error: Error) throws {
        try #require(self.connects.requests.first).promise.fail(error)
        self.loop.run()
    }

    func has<Handler: ChannelHandler>(_ type: Handler.Type) -> Bool {
        (try? self.channel.pipeline.syncOperations.handler(type: type)) != nil
    }
}

private func upgradeRequest(protocols: String? = nil) -> String {
    "GET /ws HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + (protocols.map { "Sec-WebSocket-Protocol: \($0)\r\n" } ?? "") + "\r\n"
}

@Suite("Upgrade on EmbeddedChannel")
struct UpgradeEmbeddedTests {
    // MARK: The 101

    @Test("a valid upgrade whose backend connects: 101 with Upgrade, Connection and RFC 6455's Sec-WebSocket-Accept")
    func switchingProtocols() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest())
        #expect(try c.response() == nil, "no answer before the backend is connected")
        #expect(c.connects.requests.map(\.target) == [.tcp(host: "127.0.0.1", port: 5900)])

        let backend = try c.backendConnects()
        let response = try #require(try c.response())
        #expect(response.status == 101)
        #expect(response.header("Upgrade")?.lowercased() == "websocket")
        #expect(response.header("Connection")?.lowercased() == "upgrade")
        #expect(response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(response.header("Sec-WebSocket-Protocol") == nil, "none offered, none chosen")
        #expect(response.body.isEmpty)
        #expect(c.channel.isActive && backend.isActive)
        #expect(c.registry.count == 1, "the slot is the session's now")
        #expect(
            backend.options.contains { $0.option is ChannelOptions.Types.AutoReadOption && $0.value as? Bool == true },
            "the backend, connected with auto-read off, reads once the session exists"
        )
    }

    @Test("an offered 'binary' subprotocol is echoed in the 101; a bearer.TOKEN offered beside it is not")
    func subprotocolEchoed() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest(protocols: "binary, bearer.not-a-protocol"))
        try c.backendConnects()
        let response = try #require(try c.response())
        #expect(response.status == 101)
        #expect(response.headers.filter { $0.0.lowercased() == "sec-websocket-protocol" }.map(\.1) == ["binary"])
    }

    @Test("a subprotocol Ferry does not speak, offered alone: 400 naming 'binary', and no backend connect")
    func unknownSubprotocol() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest(protocols: "chat"))
        let response = try #require(try c.response())
        #expect(response.status == 400)
        #expect(response.body.contains("binary"))
        #expect(c.connects.requests.isEmpty)
        #expect(c.registry.count == 0)
        #expect(!c.channel.isActive)
    }

    @Test("after the 101 the client pipeline holds the session's handlers and no HTTP handler; the handshake deadline left with them")
    func pipelineAfterUpgrade() throws {
        let c = try UpgradeConnection(handshakeTimeout: .seconds(2))
        try c.send(upgradeRequest())
        let backend = try c.backendConnects()
        #expect(try c.response()?.status == 101)

        #expect(!c.has(HTTPHandshakeHandler.self))
        #expect(!c.has(ByteToMessageHandler<HTTPRequestDecoder>.self))
        #expect(!c.has(HTTPResponseEncoder.self))
        #expect(!c.has(HandshakeDeadlineHandler.self))
        #expect(c.has(WebSocketFrameEncoder.self))
        #expect(c.has(WebSocketStreamDecoder.self))
        #expect(c.has(WebSocketSessionHandler.self))
        #expect((try? backend.pipeline.syncOperations.handler(type: BackendHandler.self)) != nil)

        // The deadline handler arms with the real clock; the embedded clock is moved past it.
        c.loop.advanceTime(to: .now() + .seconds(5))
        #expect(c.channel.isActive && backend.isActive, "the session outlives the handshake deadline")
    }

    // MARK: While the backend connects

    @Test("while the backend connects no read() passes and the slot is held; bytes sent early reach the backend after the 101, in order")
    func pendingConnect() throws {
        let c = try UpgradeConnection()
        c.channel.read()
        #expect(c.reads.reads == 1, "awaiting the request: reads pass")

        // The first frame rides in the request's own packet; a second arrives while the backend connects.
        var packet = ByteBuffer(string: upgradeRequest())
        packet.writeImmutableBuffer(EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: [1, 2, 3]))
        try c.send(packet)
        #expect(c.connects.requests.count == 1)
        c.channel.read()
        c.channel.read()
        #expect(c.reads.reads == 1, "no read() passes the handshake handler while the backend connects")
        try c.send(EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: [4, 5]))
        #expect(try c.response() == nil)
        #expect(c.registry.count == 1, "the connect holds a slot")

        let backend = try c.backendConnects()
        #expect(try c.response()?.status == 101)
        #expect(try EmbeddedWire.outboundBytes(backend) == [1, 2, 3, 4, 5])
        #expect(c.reads.reads == 2, "the upgrade asks for reads again")

        try backend.writeInbound(ByteBuffer(bytes: [9, 8, 7]))
        c.loop.run()
        #expect(try EmbeddedWire.outboundFrames(c.channel) == [EmbeddedFrame(fin: true, opcode: EmbeddedFrame.binary, payload: [9, 8, 7])])
    }

    @Test("a client that leaves while its backend connects frees the slot at once; the backend, when it connects, is closed")
    func clientLeaves() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest())
        #expect(c.registry.count == 1)
        c.channel.close(promise: nil)
        c.loop.run()
        #expect(c.registry.count == 0)

        let backend = try c.backendConnects()
        #expect(!backend.isActive)
        #expect(c.registry.count == 0)
    }

    @Test("a client that closes its sending side while its backend connects: 400 saying so, slot released")
    func clientHalfCloses() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest())
        c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        c.loop.run()
        let response = try #require(try c.response())
        #expect(response.status == 400)
        #expect(response.body.contains("closed its sending side"))
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0)

        let backend = try c.backendConnects()
        #expect(!backend.isActive)
    }

    // MARK: Connects that fail

    @Test("a backend that refuses the connection: 502 \"could not connect to the backend\", slot released")
    func refused() throws {
        let c = try UpgradeConnection()
        try c.send(upgradeRequest())
        #expect(c.registry.count == 1)
        try c.backendFails(BackendConnector.Failure.unreachable("connection refused"))

        let response = try #require(try c.response())
        #expect(response.status == 502)
        #expect(response.body == "could not connect to the backend\n")
        #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(response.header("Content-Length") == "\(response.body.utf8.count)")
        #expect(response.header("Connection") == "close")
        #expect(response.header("Cache-Control") == "no-store")
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0, "the slot is free again")
    }

    @Test("a backend connect still pending when the handshake budget runs out: 504, slot released, a late backend closed")
    func timedOut() throws {
        let c = try UpgradeConnection(handshakeTimeout: .seconds(10))
        try c.send(upgradeRequest())
        let timeout = try #require(c.connects.requests.first?.timeout)
        #expect(timeout > .zero && timeout <= .seconds(10), "the connect gets what is left of the handshake budget")

        c.loop.advanceTime(by: .seconds(5))
        #expect(try c.response() == nil)
        #expect(c.registry.count == 1)
        c.loop.advanceTime(by: .seconds(5))
        let response = try #require(try c.response())
        #expect(response.status == 504)
        #expect(response.body == "the backend did not accept the connection in time\n")
        #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(response.header("Connection") == "close")
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0, "the slot is free again")

        // A connect that ends after its answer: the channel is closed, not used.
        let backend = try c.backendConnects()
        #expect(!backend.isActive)
        #expect(c.registry.count == 0)
    }
}
