import Logging
import NIOCore

/// The last handler of an HTTP/2 connection: swift-nio-http2 answers a connection error (a flood, a
/// CONTINUATION run, an HPACK bomb, a broken frame) with GOAWAY and reports it here; the connection is
/// then closed, so a hostile client holds nothing after it. Stream errors stay on their streams.
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    private let logger: Logger
    private let status: HTTP2ConnectionStatus

    init(logger: Logger, status: HTTP2ConnectionStatus) {
        self.logger = logger
        self.status = status
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.logger.debug("HTTP/2 connection closed after an error", metadata: ["error": "\(error)"])
        self.status.ending()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.status.ending()
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension HTTP2ConnectionErrorHandler: Sendable {}
