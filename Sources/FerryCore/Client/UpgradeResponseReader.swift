import NIOCore
import NIOSSL

/// Writes the upgrade request once the connection is up and reads the relay's answer: a valid 101
/// completes `upgraded`, anything else fails it with a ``ConnectFailure`` that says what the relay
/// said (for a refusal, the status and the first line of its body). Bytes that follow the 101 in the
/// same read (frames the relay sent at once) are kept and passed on when this handler leaves the
/// pipeline, after the session's handlers are in place.
///
/// The channel has auto-read off: this handler asks for each read it needs, and stops asking once
/// the answer is in. What it holds is bounded: the head by `maxHeadSize`, a refusal's body by
/// `maxBodyLineSize`.
final class UpgradeResponseReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case waitingForHead
        /// A refusal: reading its body's first line (`remaining` bytes at most).
        case readingRefusalBody(status: Int, reason: String, remaining: Int, chunked: Bool)
        /// The answer is in (a 101 or a failure); bytes after a 101 wait in `received`.
        case done
    }

    static let maxBodyLineSize = 512

    private let request: ClientUpgradeRequest
    private let address: String
    private let maxHeadSize: Int
    private let upgraded: EventLoopPromise<Void>
    private var state = State.waitingForHead
    private var received: ByteBuffer?

    init(request: ClientUpgradeRequest, address: String, maxHeadSize: Int, upgraded: EventLoopPromise<Void>) {
        self.request = request
        self.address = address
        self.maxHeadSize = maxHeadSize
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 512)
        self.request.write(into: &buffer)
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if self.received == nil {
            self.received = bytes
        } else {
            self.received!.writeBuffer(&bytes)
        }
        switch self.state {
        case .waitingForHead:
            self.readHead(context: context)
        case .readingRefusalBody:
            self.readRefusalBody(context: context, ended: false)
        case .done:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .done = self.state { return }
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            self.fail(.tlsFailed(address: self.address, reason: Self.describeTLS(error)), context: context)
        } else if case .readingRefusalBody = self.state {
            self.readRefusalBody(context: context, ended: true)
        } else {
            // A reset before the answer (websockify --ssl-only hangs up on a ws:// request that way):
            // `connection reset by peer`, not NIO's `read(descriptor:pointer:size:): … (errno: 104)`.
            self.fail(.unreachable(address: self.address, reason: WebSocketDialer.describe(error)), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch self.state {
        case .waitingForHead:
            self.fail(.notWebSocket(reason: "the connection closed before an answer to the upgrade"), context: context)
        case .readingRefusalBody:
            self.readRefusalBody(context: context, ended: true)
        case .done:
            break
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .done = self.state, let rest = self.received, rest.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        self.received = nil
    }

    // MARK: The answer

    private func readHead(context: ChannelHandlerContext) {
        guard let buffer = self.received else { return }
        guard let end = Self.endOfHead(in: buffer) else {
            if buffer.readableBytes > self.maxHeadSize {
                self.fail(.notWebSocket(reason: "the answer's head is larger than \(self.maxHeadSize) bytes"), context: context)
            }
            return
        }
        let headText = buffer.getString(at: buffer.readerIndex, length: end) ?? ""
        self.received!.moveReaderIndex(forwardBy: end + 4)
        let head: UpgradeResponseHead
        do {
            head = try UpgradeResponseHead.parse(headText)
        } catch {
            self.fail(error, context: context)
            return
        }
        guard head.status == 101 else {
            let length = head.values("content-length").first.flatMap { Int($0) } ?? Self.maxBodyLineSize
            let chunked = head.tokens("transfer-encoding").contains("chunked")
            self.state = .readingRefusalBody(status: head.status, reason: head.reason, remaining: min(length, Self.maxBodyLineSize), chunked: chunked)
            self.readRefusalBody(context: context, ended: false)
            return
        }
        do {
            _ = try head.checkSwitchingProtocols(for: self.request)
        } catch {
            self.fail(error, context: context)
            return
        }
        self.state = .done
        self.upgraded.succeed()
    }

    /// Takes the refusal's message once its first line, its declared length or the bound is in
    /// (or the connection ended).
    private func readRefusalBody(context: ChannelHandlerContext, ended: Bool) {
        guard case .readingRefusalBody(let status, let reason, let remaining, let chunked) = self.state else { return }
        var body = self.received ?? ByteBuffer()
        if chunked {
            // The first line is the chunk's size; the message is on the next.
            guard let sizeEnd = body.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if ended || body.readableBytes > Self.maxBodyLineSize { self.refuse(status: status, message: reason, context: context) }
                return
            }
            body.moveReaderIndex(to: sizeEnd + 1)
        }
        let view = body.readableBytesView.prefix(remaining)
        let lineEnd = view.firstIndex { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
        guard lineEnd != nil || view.count >= remaining || ended else { return }
        let line = String(decoding: view[..<(lineEnd ?? view.endIndex)], as: UTF8.self).trimmingSpaces
        let printable = String(line.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        self.refuse(status: status, message: printable.isEmpty ? reason : printable, context: context)
    }

    private func refuse(status: Int, message: String, context: ChannelHandlerContext) {
        self.fail(.refused(status: status, message: message), context: context)
    }

    private func fail(_ failure: ConnectFailure, context: ChannelHandlerContext) {
        if case .done = self.state { return }
        self.state = .done
        self.received = nil
        self.upgraded.fail(failure)
        context.close(promise: nil)
    }

    /// The offset of the blank line (`\r\n\r\n`) that ends the head, from the reader index.
    static func endOfHead(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes in
            guard bytes.count >= 4 else { return nil }
            for index in 0...(bytes.count - 4)
            where bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                return index
            }
            return nil
        }
    }

    /// BoringSSL's reason, without the error stack's noise.
    private static func describeTLS(_ error: Error) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the relay's certificate could not be verified (CERTIFICATE_VERIFY_FAILED); trust its CA with --ca FILE, or name the host it was issued for with --server-name"
        }
        if text.contains("WRONG_VERSION_NUMBER") { return "the server does not speak TLS on this port (WRONG_VERSION_NUMBER)" }
        return text
    }
}

@available(*, unavailable)
extension UpgradeResponseReader: Sendable {}
