import NIOCore

/// Opens the tunnel through an HTTP proxy: first in the relay channel's pipeline, it sends
/// `CONNECT relay:port` once the TCP connection to the proxy is up, reads the answer's head (at
/// most `maxHeadSize` bytes) and, on any 2xx, leaves the pipeline and only then passes
/// `channelActive` on. The handlers behind it (TLS for `wss://`, then the upgrade request) start on
/// `channelActive`, so nothing of theirs (no ClientHello) reaches the proxy before its 2xx; bytes that
/// followed the head are passed on after it. Any other answer fails `failed` with a
/// ``ConnectFailure`` naming the proxy, and closes the channel.
///
/// The channel has auto-read off: this handler asks for each read it needs.
final class ProxyConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: ConnectProxy
    /// `host:port` of the relay, as CONNECT names it (IPv6 in brackets).
    private let target: String
    private let maxHeadSize: Int
    private let failed: EventLoopPromise<Void>
    private var state = ProxyConnectState.idle

    init(proxy: ConnectProxy, target: String, maxHeadSize: Int, failed: EventLoopPromise<Void>) {
        self.proxy = proxy
        self.target = target
        self.maxHeadSize = maxHeadSize
        self.failed = failed
    }

    /// The request, byte for byte.
    static func request(target: String, authorization: String?) -> String {
        var text = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        if let authorization { text += "Proxy-Authorization: \(authorization)\r\n" }
        return text + "\r\n"
    }

    func channelActive(context: ChannelHandlerContext) {
        // Not passed on: the handlers behind start when the tunnel is open.
        guard self.state.move(to: .awaitingResponse(context.channel.allocator.buffer(capacity: 256))) else {
            return self.fail(.proxyBroken(proxy: self.proxy.address, reason: "the connection became active twice"), context: context)
        }
        let request = Self.request(target: self.target, authorization: self.proxy.authorization)
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .awaitingResponse(var received) = self.state else { return }
        var bytes = Self.unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard let end = UpgradeResponseReader.endOfHead(in: received) else {
            if received.readableBytes > self.maxHeadSize {
                return self.fail(.proxyBroken(proxy: self.proxy.address, reason: "the answer's head is larger than \(self.maxHeadSize) bytes"), context: context)
            }
            _ = self.state.move(to: .awaitingResponse(received))
            return
        }
        guard end <= self.maxHeadSize else {
            return self.fail(.proxyBroken(proxy: self.proxy.address, reason: "the answer's head is larger than \(self.maxHeadSize) bytes"), context: context)
        }
        let text = received.readString(length: end) ?? ""
        received.moveReaderIndex(forwardBy: 4)
        let head: UpgradeResponseHead
        do {
            head = try UpgradeResponseHead.parse(text)
        } catch {
            let reason: String
            if case .notWebSocket(let why) = error { reason = why } else { reason = "\(error)" }
            return self.fail(.proxyBroken(proxy: self.proxy.address, reason: reason), context: context)
        }
        switch head.status {
        case 200..<300:
            guard self.state.move(to: .established(rest: received)) else { return }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        case 401, 407:
            // tinyproxy answers wrong credentials with 401.
            self.fail(.proxyCredentials(proxy: self.proxy.address, status: head.status, given: self.proxy.credentials != nil, source: self.proxy.source), context: context)
        default:
            let reason = String(head.reason.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
            self.fail(.proxyRefused(proxy: self.proxy.address, target: self.target, status: head.status, reason: reason), context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .awaitingResponse = self.state { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch self.state {
        case .idle, .awaitingResponse:
            self.fail(.proxyBroken(proxy: self.proxy.address, reason: WebSocketDialer.describe(error)), context: context)
        case .established, .handedOver, .failed:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The handlers behind never saw the channel active: they are not told it ended either.
        switch self.state {
        case .idle, .awaitingResponse:
            self.fail(.proxyBroken(proxy: self.proxy.address, reason: "it closed the connection before answering CONNECT"), context: context)
        case .established, .handedOver, .failed:
            break
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        guard case .established(let rest) = self.state, self.state.move(to: .handedOver) else { return }
        context.fireChannelActive()
        if rest.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
    }

    private func fail(_ failure: ConnectFailure, context: ChannelHandlerContext) {
        guard self.state.move(to: .failed) else { return }
        self.failed.fail(failure)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ProxyConnectHandler: Sendable {}
