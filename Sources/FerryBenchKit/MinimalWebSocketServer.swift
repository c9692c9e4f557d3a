import FerryCore
import Foundation
import NIOCore
import NIOPosix

/// The least a WebSocket server can do per connection, to show the lean handshake client's ceiling:
/// read the request up to its blank line, answer `101` with the key's `Sec-WebSocket-Accept`, answer
/// the client's close frame with a close frame, hang up. No HTTP parser, no pipeline changes, no
/// backend. (NIO's stock HTTP server with its WebSocket upgrader was tried first: at about 3,800
/// handshakes/s with 50 clients it was slower than the relays it should bound.)
public final class MinimalWebSocketServer: Sendable {
    public let port: Int
    private let channel: Channel

    private init(port: Int, channel: Channel) {
        self.port = port
        self.channel = channel
    }

    public static func start(group: EventLoopGroup) async throws -> MinimalWebSocketServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MinimalUpgradeHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return MinimalWebSocketServer(port: channel.localAddress?.port ?? 0, channel: channel)
    }

    public func stop() async {
        try? await self.channel.close()
    }
}

/// One connection: the request, then any bytes (the close frame) end it.
private final class MinimalUpgradeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var request = ByteBuffer()
    private var upgraded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.upgraded {
            var close = context.channel.allocator.buffer(capacity: 4)
            close.writeBytes([0x88, 0x02, 0x03, 0xE8])
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(close)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        self.request.writeBuffer(&bytes)
        guard let key = MinimalRequest.key(in: self.request) else {
            if self.request.readableBytes > 8192 { context.close(promise: nil) }
            return
        }
        let accept = WebSocketAccept.value(forKey: key)
        self.upgraded = true
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n"
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
    }
}

/// The minimal server's and relay's whole request parsing: wait for the blank line, take the key.
enum MinimalRequest {
    /// The request's `Sec-WebSocket-Key` ("" if it has none); nil until the blank line has come.
    static func key(in request: ByteBuffer) -> String? {
        guard let text = request.getString(at: request.readerIndex, length: request.readableBytes),
              let end = text.range(of: "\r\n\r\n")
        else { return nil }
        return text[..<end.lowerBound].split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }
            .map { $0.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces) } ?? ""
    }
}
