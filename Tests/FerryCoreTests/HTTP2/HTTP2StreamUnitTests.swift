import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing

@testable import FerryCore

/// The HTTP/2 stream's building blocks without a socket: the request codec, the handshake's sorting
/// of an HTTP/2 head (RFC 8441 §4), and the tunnel's END_STREAM handling.
@Suite("HTTP/2 streams, unit")
struct HTTP2StreamUnitTests {
    static func connectBlock(protocol extended: String? = "websocket", extra: [(String, String)] = [("sec-websocket-version", "13")]) -> HPACKHeaders {
        var headers: [(String, String)] = [(":method", "CONNECT")]
        if let extended { headers.append((":protocol", extended)) }
        headers += [(":scheme", "https"), (":path", "/vnc?x=1"), (":authority", "relay.example:443")] + extra
        return HPACKHeaders(headers)
    }

    static func head(_ block: HPACKHeaders) throws -> HTTPRequestHead { try HTTP2RequestCodec.requestHead(block) }

    @Test("an extended CONNECT becomes a head: :path the URI, :authority the Host, :protocol kept under its own name")
    func requestHead() throws {
        let head = try Self.head(Self.connectBlock(extra: [("sec-websocket-version", "13"), ("origin", "https://relay.example")]))
        #expect(head.version == .http2)
        #expect(head.method == .CONNECT)
        #expect(head.uri == "/vnc?x=1")
        #expect(head.headers["host"] == ["relay.example:443"])
        #expect(head.headers[HTTP2RequestCodec.protocolHeader] == ["websocket"])
        #expect(head.headers["origin"] == ["https://relay.example"])
    }

    @Test("the handshake sorts HTTP/2 heads by RFC 8441: CONNECT with :protocol websocket is an upgrade, a GET is plain, the rest are refused")
    func sorting() throws {
        guard case .upgrade(let handshake) = UpgradeRequest(try Self.head(Self.connectBlock(extra: [("sec-websocket-version", "13"), ("sec-websocket-protocol", "binary")]))) else {
            Issue.record("an extended CONNECT is an upgrade")
            return
        }
        #expect(handshake.subprotocol == "binary")
        let get = try Self.head(HPACKHeaders([(":method", "GET"), (":scheme", "https"), (":path", "/healthz"), (":authority", "relay.example")]))
        #expect(UpgradeRequest(get) == .plain)
        // A plain CONNECT (a proxy tunnel) is not served.
        guard case .rejected(let plainConnect) = UpgradeRequest(try Self.head(Self.connectBlock(protocol: nil))) else {
            Issue.record("CONNECT without :protocol is refused")
            return
        }
        #expect(plainConnect.status == .methodNotAllowed)
        guard case .rejected(let other) = UpgradeRequest(try Self.head(Self.connectBlock(protocol: "webtransport"))) else {
            Issue.record("another :protocol is refused")
            return
        }
        #expect(other.status == .methodNotAllowed)
        #expect(UpgradeRequest(try Self.head(Self.connectBlock(extra: []))) == .rejected(.unsupportedVersion))
        let protocolOnGet = try Self.head(HPACKHeaders([(":method", "GET"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/"), (":authority", "a")]))
        guard case .rejected(let misplaced) = UpgradeRequest(protocolOnGet) else {
            Issue.record(":protocol on a GET is refused")
            return
        }
        #expect(misplaced.status == .badRequest)
    }

    @Test("the codec ends a CONNECT request at its head, keeps early bytes for the tunnel (bounded), and writes answers as HTTP/2 frames without HTTP/1.1's connection headers")
    func codec() throws {
        let codec = HTTP2RequestCodec()
        let channel = EmbeddedChannel(handler: codec)
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: Self.connectBlock())))
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("a head first")
            return
        }
        #expect(head.method == .CONNECT)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == .end(nil))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "early")))))
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil)
        #expect(codec.earlyBytes == ByteBuffer(string: "early"))

        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Sec-WebSocket-Protocol", value: "binary")
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers)))
        guard case .headers(let answer) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("a HEADERS frame")
            return
        }
        #expect(answer.headers.first(name: ":status") == "200")
        #expect(answer.headers.first(name: "sec-websocket-protocol") == "binary")
        #expect(!answer.headers.contains(name: "connection"))
        #expect(!answer.endStream)

        // More than the bound before the answer: an error, which closes the stream.
        let big = ByteBuffer(repeating: 0x61, count: HTTP2RequestCodec.maxEarlyBytes)
        #expect(throws: TooMuchEarlyData.self) {
            try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(big))))
        }
        _ = try? channel.finish()
    }

    @Test("the tunnel turns DATA into bytes and END_STREAM into inputClosed; closing sends END_STREAM and waits (bounded) for the client's")
    func tunnel() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let events = EventRecorder()
        try channel.pipeline.syncOperations.addHandlers([HTTP2TunnelHandler(earlyBytes: nil, closeTimeout: .seconds(2)), events])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "hello")))))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        try channel.writeOutbound(ByteBuffer(string: "back"))
        guard case .data(let out) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self), case .byteBuffer(let bytes) = out.data else {
            Issue.record("bytes out are a DATA frame")
            return
        }
        #expect(bytes == ByteBuffer(string: "back"))

        let closed = channel.close()
        guard case .data(let end) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("END_STREAM first")
            return
        }
        #expect(end.endStream)
        #expect(channel.isActive, "the stream waits for the client's END_STREAM")
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "and is closed at the bound")
        try closed.wait()

        let other = EmbeddedChannel(loop: loop)
        let otherEvents = EventRecorder()
        try other.pipeline.syncOperations.addHandlers([HTTP2TunnelHandler(earlyBytes: nil, closeTimeout: .seconds(2)), otherEvents])
        try other.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try other.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        #expect(otherEvents.inputClosed == 1)
        // Closing now sends END_STREAM; a real stream is then closed by NIO, here by the bound.
        let otherClosed = other.close()
        loop.advanceTime(by: .seconds(2))
        try otherClosed.wait()
    }
}

/// Counts `inputClosed` events.
private final class EventRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    var inputClosed = 0

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { self.inputClosed += 1 }
        context.fireUserInboundEventTriggered(event)
    }
}
