import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket server built from NIO's stock parts (its HTTP/1 server pipeline and WebSocket
/// upgrader) that connects to nothing: it answers the upgrade, answers a close frame with a close
/// frame and hangs up. The handshake benchmark runs the lean client against it to show the client's
/// ceiling, and as what a WebSocket server with no backend costs on this machine.
public final class StockWebSocketServer: Sendable {
    public let port: Int
    private let channel: Channel

    private init(port: Int, channel: Channel) {
        self.port = port
        self.channel = channel
    }

    public static func start(group: EventLoopGroup) async throws -> StockWebSocketServer {
        let upgrader = NIOWebSocketServerUpgrader(
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CloseAnswerer())
                }
            }
        )
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                )
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return StockWebSocketServer(port: channel.localAddress?.port ?? 0, channel: channel)
    }

    public func stop() async {
        try? await self.channel.close()
    }
}

/// Answers a close frame with close 1000 and closes; ignores everything else.
private final class CloseAnswerer: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard frame.opcode == .connectionClose else { return }
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
    }
}
