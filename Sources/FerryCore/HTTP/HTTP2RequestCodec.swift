import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 stream, until it is answered, as the HTTP/1.1 handshake sees a connection: a request
/// head, its body and its end in; a response head, body and end out. So ``HTTPHandshakeHandler``
/// decides, refuses and serves pages on a stream exactly as on a connection.
///
/// Why not swift-nio-http2's `HTTP2FramePayloadToHTTP1ServerCodec`: it drops the `:protocol`
/// pseudo-header, which is what makes an extended CONNECT a WebSocket (RFC 8441 §4), and it expects
/// a CONNECT's request to end with END_STREAM, which a WebSocket's never does. This codec keeps
/// `:protocol` in the head's headers under its own name (no HTTP/1.1 header and no regular HTTP/2
/// header can be called `:protocol`, so it cannot be forged), and ends a CONNECT request at its head.
///
/// After the upgrade's 200 the stream carries WebSocket bytes: ``HTTP2TunnelHandler`` takes this
/// codec's place, with any bytes the client sent before the 200 (at most ``maxEarlyBytes``).
final class HTTP2RequestCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// The name the `:protocol` pseudo-header travels under in the request head.
    static let protocolHeader = ":protocol"
    /// WebSocket bytes a client may send before the 200 (RFC 8441 clients wait for it; a little is kept).
    static let maxEarlyBytes = 64 * 1024

    /// Response headers HTTP/2 forbids (RFC 9113 §8.2.2); the HTTP/1.1 answers set some of them.
    private static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    private enum State {
        case awaitingHead
        /// A request whose end is its END_STREAM (GET, HEAD, ...).
        case readingRequest
        /// An extended CONNECT: the request ended at its head; what follows is the tunnel's.
        case tunnelRequested
        /// END_STREAM came in.
        case inputEnded
    }

    private var state = State.awaitingHead
    /// Bytes a CONNECT stream sent before its answer, handed to the tunnel.
    private(set) var earlyBytes: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .headers(let headers):
            self.readHeaders(headers, context: context)
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else { return }
            self.readData(bytes, endStream: data.endStream, context: context)
        default:
            break  // RST_STREAM closes the stream channel itself; the rest is connection business
        }
    }

    private func readHeaders(_ frame: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        switch self.state {
        case .awaitingHead:
            let head: HTTPRequestHead
            do {
                head = try Self.requestHead(frame.headers)
            } catch {
                context.fireErrorCaught(error)
                return
            }
            context.fireChannelRead(Self.wrapInboundOut(.head(head)))
            if head.method == .CONNECT {
                self.state = .tunnelRequested
                context.fireChannelRead(Self.wrapInboundOut(.end(nil)))
                if frame.endStream { self.endInput(context: context) }
            } else if frame.endStream {
                self.state = .inputEnded
                context.fireChannelRead(Self.wrapInboundOut(.end(nil)))
            } else {
                self.state = .readingRequest
            }
        case .readingRequest:
            // Trailers end the request.
            self.state = .inputEnded
            context.fireChannelRead(Self.wrapInboundOut(.end(nil)))
        case .tunnelRequested:
            if frame.endStream { self.endInput(context: context) }
        case .inputEnded:
            break
        }
    }

    private func readData(_ bytes: ByteBuffer, endStream: Bool, context: ChannelHandlerContext) {
        switch self.state {
        case .readingRequest:
            if bytes.readableBytes > 0 { context.fireChannelRead(Self.wrapInboundOut(.body(bytes))) }
            if endStream {
                self.state = .inputEnded
                context.fireChannelRead(Self.wrapInboundOut(.end(nil)))
            }
        case .tunnelRequested:
            var early = bytes
            if var kept = self.earlyBytes {
                kept.writeBuffer(&early)
                self.earlyBytes = kept
            } else {
                self.earlyBytes = early
            }
            if (self.earlyBytes?.readableBytes ?? 0) > Self.maxEarlyBytes {
                context.fireErrorCaught(TooMuchEarlyData())
                return
            }
            if endStream { self.endInput(context: context) }
        case .awaitingHead, .inputEnded:
            break
        }
    }

    /// The client ended its side of a CONNECT: as a TCP client's FIN, an `inputClosed` event.
    private func endInput(context: ChannelHandlerContext) {
        self.state = .inputEnded
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch Self.unwrapOutboundIn(data) {
        case .head(let head):
            var headers = HPACKHeaders()
            headers.reserveCapacity(head.headers.count + 1)
            headers.add(name: ":status", value: String(head.status.code))
            for (name, value) in head.headers {
                let lowered = name.lowercased()
                if Self.connectionSpecific.contains(lowered) { continue }
                headers.add(name: lowered, value: value)
            }
            context.write(Self.wrapOutboundOut(.headers(.init(headers: headers))), promise: promise)
        case .body(.byteBuffer(let bytes)):
            context.write(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
        case .body(.fileRegion):
            // Only ever written where there is no TLS, and HTTP/2 is only offered over TLS.
            promise?.fail(ChannelError.operationUnsupported)
        case .end:
            context.write(Self.wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: promise)
        }
    }

    /// The head as ``UpgradeRequest`` and the policy read it: `:path` as the URI, `:authority` as the
    /// `Host` header (RFC 9113 §8.3.1), `:protocol` kept under its own name.
    static func requestHead(_ block: HPACKHeaders) throws -> HTTPRequestHead {
        var method: String?
        var path: String?
        var authority: String?
        var extendedProtocol: String?
        var headers = HTTPHeaders()
        for (name, value, _) in block {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":protocol": extendedProtocol = value
            case ":scheme": break
            default: headers.add(name: name, value: value)
            }
        }
        guard let method else { throw NIOHTTP2Errors.missingPseudoHeader(":method") }
        if let authority, !headers.contains(name: "host") { headers.add(name: "host", value: authority) }
        if let extendedProtocol { headers.add(name: Self.protocolHeader, value: extendedProtocol) }
        return HTTPRequestHead(version: .http2, method: HTTPMethod(rawValue: method), uri: path ?? "", headers: headers)
    }
}

/// A CONNECT stream sent more than ``HTTP2RequestCodec/maxEarlyBytes`` before its answer.
struct TooMuchEarlyData: Error {}

@available(*, unavailable)
extension HTTP2RequestCodec: Sendable {}
