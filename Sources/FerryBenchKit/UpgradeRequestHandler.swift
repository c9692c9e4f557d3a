import NIOCore

/// Writes the HTTP upgrade request and waits for `101`; then leaves the pipeline, passing on any bytes
/// that came after the response.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let port: Int
    private let done: EventLoopPromise<Void>
    private var response = ByteBuffer()

    init(port: Int, done: EventLoopPromise<Void>) {
        self.port = port
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        let request =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:\(self.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: binary\r\n\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        self.response.writeBuffer(&input)
        let view = self.response.readableBytesView
        guard let end = Self.headerEnd(view) else {
            if self.response.readableBytes > 16 * 1024 { self.fail("response head too long", context: context) }
            return
        }
        let head = self.response.readString(length: end - view.startIndex)!
        guard head.hasPrefix("HTTP/1.1 101") else {
            self.fail(String(head.prefix { $0 != "\r" }), context: context)
            return
        }
        let rest = self.response
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if rest.readableBytes > 0 { context.fireChannelRead(Self.wrapInboundOut(rest)) }
        self.done.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.fail(BenchError.handshakeFailed("connection closed"))
        context.fireChannelInactive()
    }

    private func fail(_ why: String, context: ChannelHandlerContext) {
        self.done.fail(BenchError.handshakeFailed(why))
        context.close(promise: nil)
    }

    private static func headerEnd(_ view: ByteBufferView) -> Int? {
        var index = view.startIndex
        while index + 3 < view.endIndex {
            if view[index] == 13 && view[index + 1] == 10 && view[index + 2] == 13 && view[index + 3] == 10 {
                return index + 4
            }
            index += 1
        }
        return nil
    }
}
