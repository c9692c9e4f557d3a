import NIOCore

/// The pipeline of one HTTP/2 stream: the same handshake deadline and handshake handler an HTTP/1.1
/// connection starts with, behind ``HTTP2RequestCodec`` instead of the HTTP/1.1 parser. The same
/// routes, Origin rules, tokens, limits and session assembly apply; an upgrade swaps the codec for
/// ``HTTP2TunnelHandler``.
enum HTTP2Stream {
    /// - Parameter client: who the connection's PROXY header said the client is, if it said.
    static func configure(_ channel: Channel, services: HandshakeServices, client: SocketAddress?, connection: HTTP2ConnectionStatus) throws {
        let codec = HTTP2RequestCodec()
        let handlers = HTTPHandshakeHandler.HTTPHandlers(
            deadline: HandshakeDeadlineHandler(timeout: services.limits.handshakeTimeout),
            decoder: nil,
            encoder: nil,
            http2Codec: codec,
            http2Connection: connection
        )
        let handshake = HTTPHandshakeHandler(services: services, httpHandlers: handlers)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handlers.deadline)
        try sync.addHandler(codec)
        try sync.addHandler(handshake)
        if let client { handshake.setClient(client) }
    }
}
