import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FerryCore

/// A client connection as the server builds it (``ConnectionPipeline``: handshake deadline, HTTP
/// decoder with header limits, encoder, ``HTTPHandshakeHandler``) on an `EmbeddedChannel`, with a
/// read counter at the head. Only requests answered without a backend are driven here; the upgrade,
/// with a backend connect finished by hand, is in `UpgradeEmbeddedTests.swift`.
private final class HandshakeConnection {
    let channel = EmbeddedChannel()
    let reads = EmbeddedReadCounter()
    let registry: SessionRegistry

    init(limits: Limits = Limits()) throws {
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: [Route(path: "/ws", target: .tcp(host: "127.0.0.1", port: 5900))],
            limits: limits
        )
        let environment = try RelayEnvironment(configuration: configuration, group: self.channel.embeddedEventLoop, logger: EmbeddedWire.logger)
        self.registry = environment.registry
        try ConnectionPipeline.configure(self.channel, environment: environment)
        try self.channel.pipeline.syncOperations.addHandler(self.reads, position: .first)
        self.channel.connect(to: try SocketAddress(ipAddress: "198.51.100.20", port: 40000), promise: nil)
    }

    var handler: HTTPHandshakeHandler {
        get throws { try self.channel.pipeline.syncOperations.handler(type: HTTPHandshakeHandler.self) }
    }

    func send(_ text: String) throws {
        try self.channel.writeInbound(ByteBuffer(string: text))
        self.channel.embeddedEventLoop.run()
    }

    /// The response written so far, parsed.
    func response() throws -> EmbeddedHTTPResponse? {
        try EmbeddedHTTPResponse.written(by: self.channel)
    }
}

private func upgradeRequest(path: String = "/ws", version: String = "13") -> String {
    "GET \(path) HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Version: \(version)\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
}

@Suite("Handshake on EmbeddedChannel")
struct HandshakeEmbeddedTests {
    @Test("GET /healthz: 200 \"ok\", then the connection is closed")
    func healthz() throws {
        let c = try HandshakeConnection()
        try c.send("GET /healthz HTTP/1.1\r\nHost: relay.example\r\n\r\n")
        let response = try #require(try c.response())
        #expect(response.status == 200)
        #expect(response.body == "ok\n")
        #expect(response.header("Content-Length") == "3")
        #expect(response.header("Connection") == "close")
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0)
    }

    @Test("a malformed request: 400")
    func malformed() throws {
        let c = try HandshakeConnection()
        try c.send("THIS IS NOT HTTP\r\n\r\n")
        let response = try #require(try c.response())
        #expect(response.status == 400)
        #expect(response.body.contains("malformed"))
        #expect(!c.channel.isActive)
    }

    @Test("a wrong Sec-WebSocket-Version: 426 naming version 13")
    func wrongVersion() throws {
        let c = try HandshakeConnection()
        try c.send(upgradeRequest(version: "8"))
        let response = try #require(try c.response())
        #expect(response.status == 426)
        #expect(response.header("Sec-WebSocket-Version") == "13")
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0)
    }

    @Test("a header over --max-header-size: 431")
    func oversizeHeader() throws {
        var limits = Limits()
        limits.maxHeaderSize = 1024
        let c = try HandshakeConnection(limits: limits)
        try c.send("GET /healthz HTTP/1.1\r\nHost: relay.example\r\nX-Filler: \(String(repeating: "a", count: 4096))\r\n\r\n")
        let response = try #require(try c.response())
        #expect(response.status == 431)
        #expect(!c.channel.isActive)
    }

    @Test("an upgrade on a path with no route: 404, no slot taken")
    func noRoute() throws {
        let c = try HandshakeConnection()
        try c.send(upgradeRequest(path: "/elsewhere"))
        let response = try #require(try c.response())
        #expect(response.status == 404)
        #expect(response.body.contains("no route"))
        #expect(!c.channel.isActive)
        #expect(c.registry.count == 0)
    }

    @Test("a plain request for an unknown path: 404")
    func plainNotFound() throws {
        let c = try HandshakeConnection()
        try c.send("GET /favicon.ico HTTP/1.1\r\nHost: relay.example\r\n\r\n")
        #expect(try c.response()?.status == 404)
    }

    @Test("reads pass while the request is read, and are held while deciding or connecting")
    func readsHeldWhileDeciding() throws {
        let c = try HandshakeConnection()
        c.channel.read()
        #expect(c.reads.reads == 1, "awaiting the head: reads pass")

        // Half a request: the handler is reading the body, and still reads.
        try c.send("GET /ws HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\n")
        c.channel.read()
        #expect(c.reads.reads == 2)

        // The decision (a token check, a DNS lookup) and the backend connect run with reads held.
        // An upgrade that gets this far needs a backend socket, so the state is set here; the
        // handler's read() is what is under test.
        let handler = try c.handler
        handler.state = .deciding
        c.channel.read()
        c.channel.read()
        #expect(c.reads.reads == 2, "no read() passes the handshake handler while deciding")
        #expect(try c.response() == nil, "nothing answered yet")
        #expect(c.channel.isActive)

        handler.state = .done
        c.channel.read()
        #expect(c.reads.reads == 3)
    }

    @Test("the handshake deadline closes a connection that sends nothing")
    func deadline() throws {
        var limits = Limits()
        limits.handshakeTimeout = .seconds(2)
        let c = try HandshakeConnection(limits: limits)
        // The deadline handler arms with the real clock's now(); the embedded clock starts at 0,
        // so the virtual time is moved past the real deadline.
        c.channel.embeddedEventLoop.advanceTime(to: .now() + .seconds(1))
        #expect(c.channel.isActive)
        c.channel.embeddedEventLoop.advanceTime(to: .now() + .seconds(3))
        #expect(!c.channel.isActive)
        #expect(try c.response() == nil, "closed without an answer")
    }
}
