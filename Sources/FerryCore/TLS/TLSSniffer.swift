import NIOCore
import NIOSSL

/// Serves `ws://` and `wss://` on one port: looks at the first byte a client sends without consuming
/// it, adds the TLS handler if it starts a TLS handshake record (0x16), and leaves the pipeline. The
/// bytes it looked at are passed on unchanged. With `--tls-only` a plaintext client gets a 400 saying
/// to use `wss://`, and the connection is closed.
final class TLSSniffer: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    private static let handshakeRecord: UInt8 = 0x16
    private let provider: ServerTLSContextProvider
    /// Makes the handler that acts on the protocol the client chose in ALPN (HTTP/2's switch), put
    /// right after the TLS handler; nil when only HTTP/1.1 is offered.
    private let negotiation: (() -> ChannelHandler)?
    private var decided = false

    init(provider: ServerTLSContextProvider, negotiation: (() -> ChannelHandler)? = nil) {
        self.provider = provider
        self.negotiation = negotiation
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !self.decided, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            return .needMoreData
        }
        self.decided = true
        if first == Self.handshakeRecord {
            // Half-closure is for plain HTTP (an answer after `nc -N`); over TLS, NIOSSL would take a
            // bare FIN for a half-close and wait for its own shutdown timeout.
            try context.channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
            let tls = NIOSSLServerHandler(context: self.provider.context)
            try context.pipeline.syncOperations.addHandler(tls, position: .after(context.handler))
            if let negotiation = self.negotiation {
                try context.pipeline.syncOperations.addHandler(negotiation(), position: .after(tls))
            }
        } else if self.provider.options.tlsOnly {
            let body = "this port speaks TLS only; use wss://\n"
            let response =
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n\(body)"
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return .needMoreData
        }
        // Leaving the pipeline hands the buffered bytes on (decodeLast).
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if buffer.readableBytes > 0, !(self.provider.options.tlsOnly && self.decided && !context.channel.isActive) {
            context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: buffer.readableBytes)!))
        }
        return .needMoreData
    }
}

@available(*, unavailable)
extension TLSSniffer: Sendable {}
