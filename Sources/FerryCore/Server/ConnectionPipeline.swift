import NIOCore
import NIOHTTP1

/// The handlers a new client connection starts with: a handshake deadline, the HTTP codec with header
/// limits, and the handshake handler, which swaps in the WebSocket side after a 101. Later stages
/// (a PROXY-header decoder, a TLS sniffer) go in front of the HTTP decoder.
enum ConnectionPipeline {
    static func configure(_ channel: Channel, environment: RelayEnvironment, proxyProtocol: Bool = false) throws {
        let limits = environment.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderSize
        decoderLimits.maxHeaderListSize = limits.maxHeaderSize
        decoderLimits.maxHeaderFieldCount = 100
        let handlers = HTTPHandshakeHandler.HTTPHandlers(
            deadline: HandshakeDeadlineHandler(timeout: limits.handshakeTimeout),
            decoder: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: decoderLimits)),
            encoder: HTTPResponseEncoder()
        )
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handlers.deadline)
        if proxyProtocol {
            try sync.addHandler(ByteToMessageHandler(ProxyProtocolDecoder(trustedProxies: environment.configuration.trustedProxies)))
        }
        if let tls = environment.tls {
            try sync.addHandler(ByteToMessageHandler(TLSSniffer(provider: tls)))
        }
        try sync.addHandler(handlers.decoder)
        try sync.addHandler(handlers.encoder)
        try sync.addHandler(HTTPHandshakeHandler(services: environment.handshake, httpHandlers: handlers))
    }
}
