import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import FerryCore

extension ClientTests {
    /// The CONNECT exchange on an `EmbeddedChannel`: the request's bytes, the proxy's answers (2xx
    /// with bytes behind it, split across reads, 407, 502, too large, not HTTP), and that the
    /// handlers behind it start only once the tunnel is open.
    @Suite("Proxy CONNECT handler (embedded)")
    struct ProxyConnectHandlerTests {
        /// What the handlers behind the CONNECT handler see.
        final class Behind: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            var active = false
            var received = ByteBuffer()
            var inactive = false

            func channelActive(context: ChannelHandlerContext) {
                self.active = true
                context.fireChannelActive()
            }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var bytes = Self.unwrapInboundIn(data)
                self.received.writeBuffer(&bytes)
            }

            func channelInactive(context: ChannelHandlerContext) {
                self.inactive = true
            }
        }

        final class Outcome { var failure: ConnectFailure?; var completed = false }

        struct Fixture {
            let channel = EmbeddedChannel()
            let behind = Behind()
            let outcome = Outcome()
            let handler: ProxyConnectHandler

            init(proxy: ConnectProxy = ConnectProxy(host: "127.0.0.1", port: 8888), target: String = "relay.example.com:443", maxHeadSize: Int = 1024, tls: Bool = false) throws {
                let promise = self.channel.eventLoop.makePromise(of: Void.self)
                let outcome = self.outcome
                promise.futureResult.assumeIsolated().whenComplete { result in
                    outcome.completed = true
                    if case .failure(let error) = result { outcome.failure = error as? ConnectFailure }
                }
                self.handler = ProxyConnectHandler(proxy: proxy, target: target, maxHeadSize: maxHeadSize, failed: promise)
                try self.channel.pipeline.syncOperations.addHandler(self.handler)
                if tls {
                    let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                    try self.channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "relay.example.com"))
                }
                try self.channel.pipeline.syncOperations.addHandler(self.behind)
                self.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 8888), promise: nil)
            }

            /// Everything written so far, as text.
            func written() throws -> String {
                var text = ""
                while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
                return text
            }

            func proxySends(_ text: String) throws {
                try self.channel.writeInbound(ByteBuffer(string: text))
            }

            var handlerInPipeline: Bool {
                (try? self.channel.pipeline.syncOperations.handler(type: ProxyConnectHandler.self)) != nil
            }
        }

        @Test("the request: CONNECT and Host name the relay; Proxy-Authorization only with credentials")
        func requestBytes() throws {
            let plain = try Fixture()
            #expect(try plain.written() == "CONNECT relay.example.com:443 HTTP/1.1\r\nHost: relay.example.com:443\r\n\r\n")
            #expect(!plain.behind.active, "the handlers behind wait for the tunnel")

            let credentials = ConnectProxy(host: "::1", port: 3128, credentials: .init(user: "alice", password: "s3cret"))
            let withCredentials = try Fixture(proxy: credentials, target: "[::1]:8443")
            #expect(try withCredentials.written() == "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n")
        }

        @Test("a 200 opens the tunnel: the handler leaves, the handlers behind start, bytes after the head are passed on")
        func established() throws {
            let fixture = try Fixture()
            _ = try fixture.written()
            try fixture.proxySends("HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\nHTTP/1.1 101 early")
            #expect(fixture.behind.active)
            #expect(String(buffer: fixture.behind.received) == "HTTP/1.1 101 early")
            #expect(!fixture.handlerInPipeline)
            #expect(!fixture.outcome.completed, "the session's promise is the upgrade's to complete")
            try fixture.proxySends("more")
            #expect(String(buffer: fixture.behind.received) == "HTTP/1.1 101 earlymore")
        }

        @Test("the head split across reads, byte by byte; any 2xx; HTTP/1.0")
        func splitHead() throws {
            let fixture = try Fixture()
            for byte in "HTTP/1.0 204 OK\r\n\r\n".utf8 {
                #expect(!fixture.behind.active)
                try fixture.channel.writeInbound(ByteBuffer(bytes: [byte]))
            }
            #expect(fixture.behind.active)
            #expect(fixture.behind.received.readableBytes == 0)
            #expect(!fixture.handlerInPipeline)
        }

        @Test("no ClientHello before the proxy's 200: TLS starts behind the tunnel")
        func tlsWaits() throws {
            let fixture = try Fixture(tls: true)
            let request = try fixture.written()
            #expect(request.hasPrefix("CONNECT "))
            #expect(request.hasSuffix("\r\n\r\n"), "the CONNECT request and nothing else")
            try fixture.proxySends("HTTP/1.1 200 OK\r\n\r\n")
            let hello = try #require(try fixture.channel.readOutbound(as: ByteBuffer.self))
            #expect(hello.getInteger(at: hello.readerIndex, as: UInt8.self) == 0x16, "a TLS handshake record")
            _ = try? fixture.channel.finish()
        }

        @Test("407: credentials wanted, saying where to give them; the handlers behind never start")
        func proxyAuthenticationRequired() throws {
            let fixture = try Fixture()
            try fixture.proxySends("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n")
            #expect(fixture.outcome.failure == .proxyCredentials(proxy: "127.0.0.1:8888", status: 407, given: false, source: "--proxy"))
            #expect(!fixture.channel.isActive, "closed")
            #expect(!fixture.behind.active)
            #expect(!fixture.behind.inactive, "never active, never told it ended")

            let given = try Fixture(proxy: ConnectProxy(host: "127.0.0.1", port: 8888, credentials: .init(user: "a", password: "b"), source: "HTTPS_PROXY"))
            try given.proxySends("HTTP/1.0 401 Unauthorized\r\n\r\n")
            #expect(given.outcome.failure == .proxyCredentials(proxy: "127.0.0.1:8888", status: 401, given: true, source: "HTTPS_PROXY"))
        }

        @Test("502 and other refusals: the status and reason, naming the relay")
        func refused() throws {
            let fixture = try Fixture()
            try fixture.proxySends("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nnope.")
            #expect(fixture.outcome.failure == .proxyRefused(proxy: "127.0.0.1:8888", target: "relay.example.com:443", status: 502, reason: "Bad Gateway"))
            #expect(!fixture.channel.isActive)
            #expect(fixture.behind.received.readableBytes == 0, "the refusal's body is not passed on")
        }

        @Test("a head larger than the bound, an answer that is not HTTP, a proxy that hangs up")
        func broken() throws {
            let large = try Fixture(maxHeadSize: 64)
            try large.proxySends("HTTP/1.1 200 OK\r\nX-Padding: " + String(repeating: "a", count: 100))
            #expect(large.outcome.failure == .proxyBroken(proxy: "127.0.0.1:8888", reason: "the answer's head is larger than 64 bytes"))
            #expect(!large.behind.active)

            let complete = try Fixture(maxHeadSize: 64)
            try complete.proxySends("HTTP/1.1 200 OK\r\nX-Padding: " + String(repeating: "a", count: 100) + "\r\n\r\n")
            #expect(complete.outcome.failure == .proxyBroken(proxy: "127.0.0.1:8888", reason: "the answer's head is larger than 64 bytes"), "a whole head in one read is bounded too")

            let notHTTP = try Fixture()
            try notHTTP.proxySends("SSH-2.0-OpenSSH\r\n\r\n")
            #expect(notHTTP.outcome.failure == .proxyBroken(proxy: "127.0.0.1:8888", reason: "the answer is not HTTP"))

            let hangUp = try Fixture()
            try hangUp.proxySends("HTTP/1.1 200")
            hangUp.channel.pipeline.fireChannelInactive()
            #expect(hangUp.outcome.failure == .proxyBroken(proxy: "127.0.0.1:8888", reason: "it closed the connection before answering CONNECT"))
            #expect(!hangUp.behind.inactive)
        }
    }
}
