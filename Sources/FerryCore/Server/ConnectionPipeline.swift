import NIOCore
import NIOHTTP1

/// The handlers a new client connection starts with: a handshake deadline, the HTTP codec with header
/// limits, and the handshake handler, which swaps in the WebSocket side after a 101. Later stages
/// (a PROXY-header decoder, a TLS sniffer) go in front of the HTTP decoder. A TLS client that chooses
/// `h2` in ALPN has the HTTP/1.1 handlers replaced by HTTP/2's (``HTTP2Connection``).
enum ConnectionPipeline {
    static func configure(_ channel: Channel, environment: RelayEnvironment, proxyProtocol: Bool = false) throws {
        let limits = environment.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderSize
        decoderLimits.maxHeaderListSize = limits.maxHeaderSize
        decoderLimits.maxHeaderFieldCount = 100
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: decoderLimits))
        let encoder = HTTPResponseEncoder()
        let handlers = HTTPHandshakeHandler.HTTPHandlers(
            deadline: HandshakeDeadlineHandler(timeout: limits.handshakeTimeout),
            decoder: decoder,
            encoder: encoder
        )
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handlers.deadline)
        if proxyProtocol {
            try sync.addHandler(ByteToMessageHandler(ProxyProtocolDecoder(trustedProxies: environment.configuration.trustedProxies)))
        }
        if let tls = environment.tls {
            let services = environment.handshake
            let connections = environment.http2Connections
            let negotiation: (() -> ChannelHandler)? =
                tls.options.http2 ? { HTTP2Connection.negotiation(services: services, connections: connections) } : nil
            try sync.addHandler(ByteToMessageHandler(TLSSniffer(provider: tls, negotiation: negotiation)))
        }
        try sync.addHandler(decoder)
        try sync.addHandler(encoder)
        try sync.addHandler(HTTPHandshakeHandler(services: environment.handshake, httpHandlers: handlers))
    }
}
