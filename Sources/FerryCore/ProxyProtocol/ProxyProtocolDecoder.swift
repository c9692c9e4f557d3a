import NIOCore

/// Tells the handlers behind it who the client really is (from a PROXY header).
public struct ProxiedClientAddress: Sendable {
    public var address: SocketAddress
}

/// First in the pipeline of a `proxy-protocol` listener: the connection must come from a trusted
/// proxy and start with a PROXY v1 or v2 header; anything else closes it. The client address from
/// the header is passed on as a ``ProxiedClientAddress`` event, and the bytes after the header are
/// handed on when the decoder leaves the pipeline.
final class ProxyProtocolDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    private let trustedProxies: [AddressBlock]
    private var done = false

    init(trustedProxies: [AddressBlock]) {
        self.trustedProxies = trustedProxies
    }

    func decoderAdded(context: ChannelHandlerContext) {
        guard let peer = context.channel.remoteAddress, Self.isTrusted(peer, self.trustedProxies) else {
            self.done = true
            context.close(promise: nil)
            return
        }
    }

    /// A TCP peer must be in `--trusted-proxy`; a Unix-socket peer has no address to check, and got in
    /// past the socket file's mode, which is what decides who may send PROXY headers there.
    private static func isTrusted(_ peer: SocketAddress, _ trustedProxies: [AddressBlock]) -> Bool {
        if case .unixDomainSocket = peer { return true }
        guard let bytes = peer.addressBytes else { return false }
        return trustedProxies.contains { $0.contains(bytes) }
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !self.done else { return .needMoreData }
        guard let (header, length) = try ProxyHeaderParser.parse(buffer.readableBytesView) else { return .needMoreData }
        self.done = true
        buffer.moveReaderIndex(forwardBy: length)
        if case .proxied(let source, _) = header {
            context.fireUserInboundEventTriggered(ProxiedClientAddress(address: source))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if self.done, buffer.readableBytes > 0, context.channel.isActive {
            context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: buffer.readableBytes)!))
        }
        return .needMoreData
    }
}

@available(*, unavailable)
extension ProxyProtocolDecoder: Sendable {}

extension SocketAddress {
    /// The address in network-order bytes (4 or 16); nil for Unix sockets.
    var addressBytes: [UInt8]? {
        switch self {
        case .v4(let address): return withUnsafeBytes(of: address.address.sin_addr) { Array($0) }
        case .v6(let address): return withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: return nil
        }
    }
}
