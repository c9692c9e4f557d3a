import Logging
import NIOCore
import NIOHTTP2
import NIOTLS

/// A TLS connection whose client chose `h2` in ALPN: its HTTP/1.1 handlers make way for
/// swift-nio-http2's, and each stream the client opens is a connection of its own to the rest of
/// Ferry (``HTTP2Stream``): a WebSocket (extended CONNECT, RFC 8441), a page, `/healthz`.
///
/// Hostile peers are held off by swift-nio-http2's own bounds, set here: streams at once
/// (`--max-streams-per-connection`), the header list (`--max-header-size`), resets (CVE-2023-44487),
/// CONTINUATION frames, control frames (SETTINGS, PING) per 30 s, buffered control frames, empty DATA
/// frames and other "glitches". A connection that opens no stream is closed at the handshake timeout,
/// one whose streams have all ended after ``idleTimeout``.
enum HTTP2Connection {
    /// How long a connection with no stream is kept for the page's next WebSocket.
    static let idleTimeout = TimeAmount.seconds(75)
    /// Streams reset, stream errors and control frames a client may cause per 30 s before the
    /// connection is closed (swift-nio-http2's defaults, named here because they are Ferry's bounds).
    static let framesPerWindow = 200
    /// CONTINUATION frames after one HEADERS frame (the 2024 CONTINUATION floods).
    static let maxContinuationFrames = 5
    /// A stream's flow-control window (`SETTINGS_INITIAL_WINDOW_SIZE`), or `--buffer-size` if larger.
    static let streamWindow = 1024 * 1024
    /// The largest frame a client may send (`SETTINGS_MAX_FRAME_SIZE`).
    static let maxFrameSize = 64 * 1024

    /// The handler that waits for ALPN and switches a connection that chose `h2`.
    static func negotiation(services: HandshakeServices, connections: HTTP2ConnectionSet) -> ApplicationProtocolNegotiationHandler {
        ApplicationProtocolNegotiationHandler { result, channel in
            guard case .negotiated("h2") = result else { return channel.eventLoop.makeSucceededVoidFuture() }
            return Self.configure(channel, services: services, connections: connections)
        }
    }

    /// Replaces the HTTP/1.1 handlers; the handshake deadline stays until the first stream opens.
    /// The future completes once HTTP/2's handlers are in: until then the ALPN handler holds the
    /// client's first bytes (the HTTP/1.1 parser leaves the pipeline a loop tick after it is asked to,
    /// and must not see them).
    static func configure(_ channel: Channel, services: HandshakeServices, connections: HTTP2ConnectionSet) -> EventLoopFuture<Void> {
        let sync = channel.pipeline.syncOperations
        let http1: HTTPHandshakeHandler
        do {
            http1 = try sync.handler(type: HTTPHandshakeHandler.self)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // Who the client is, as the PROXY header (if any) said: the streams cannot see that event.
        let client = http1.clientAddress
        let deadline = http1.httpHandlers.deadline
        sync.removeHandler(http1, promise: nil)
        if let encoder = http1.httpHandlers.encoder { sync.removeHandler(encoder, promise: nil) }
        let decoderGone = channel.eventLoop.makePromise(of: Void.self)
        if let decoder = http1.httpHandlers.decoder {
            sync.removeHandler(decoder, promise: decoderGone)
        } else {
            decoderGone.succeed(())
        }
        return decoderGone.futureResult.assumeIsolated().flatMapThrowing {
            try Self.addHandlers(channel, services: services, connections: connections, client: client, deadline: deadline)
        }.nonisolated()
    }

    private static func addHandlers(
        _ channel: Channel,
        services: HandshakeServices,
        connections: HTTP2ConnectionSet,
        client: SocketAddress?,
        deadline: HandshakeDeadlineHandler
    ) throws {
        let sync = channel.pipeline.syncOperations

        let limits = services.limits
        // A stream's window bounds what a stalled session holds besides its buffer (as a stalled
        // reader is bounded today: the buffer plus 1 MiB). Smaller, it paces uploads: a 256 KiB
        // window ran a single stream's upload at under half its HTTP/1.1 rate, 1 MiB close to it.
        let window = min(max(limits.bufferSize, Self.streamWindow), 16 * 1024 * 1024)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxStreamsPerConnection),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderSize),
            HTTP2Setting(parameter: .initialWindowSize, value: window),
            // Clients may send DATA frames up to 64 KiB (the default, 16 KiB, quadruples the reads
            // and frame headers of an upload); each is within the stream's window anyway.
            HTTP2Setting(parameter: .maxFrameSize, value: Self.maxFrameSize),
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        // The connection's window is returned as data arrives, whatever the streams do with it, so a
        // stalled stream (which holds back only its own window) never slows the others.
        connection.targetWindowSize = min(window * 4, Int(Int32.max))
        connection.maximumSequentialContinuationFrames = Self.maxContinuationFrames
        connection.controlFrameRateLimit.maximumCount = Self.framesPerWindow
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = window
        stream.outboundBufferSizeHighWatermark = limits.bufferSize
        stream.outboundBufferSizeLowWatermark = limits.bufferSize / 2
        stream.streamResetFrameRateLimit.maximumCount = Self.framesPerWindow
        stream.streamErrorRateLimit.maximumCount = Self.framesPerWindow

        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: Self.idleTimeout, maxAge: nil, maxGraceTime: nil, keepalive: nil)
        )
        let status = NIOLoopBound(HTTP2ConnectionStatus(), eventLoop: channel.eventLoop)
        let firstStream = NIOLoopBound(FirstStream(deadline: deadline, metrics: services.metrics), eventLoop: channel.eventLoop)
        let parent = channel
        let http2 = NIOHTTP2Handler(
            mode: .server,
            eventLoop: channel.eventLoop,
            connectionConfiguration: connection,
            streamConfiguration: stream,
            streamDelegate: manager.http2StreamDelegate
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                firstStream.value.opened(on: parent)
                try HTTP2Stream.configure(streamChannel, services: services, client: client, connection: status.value)
            }
        }
        try sync.addHandler(http2)
        try sync.addHandler(manager)
        var logger = services.logger
        if let client { logger[metadataKey: "client"] = "\(client.logDescription)" }
        try sync.addHandler(HTTP2ConnectionErrorHandler(logger: logger, status: status.value))
        connections.add(channel)
    }

    /// Takes the handshake deadline off the connection when its first stream opens: from then on
    /// each stream has its own, and the idle timer watches the connection. The connection is counted
    /// then too: browsers open speculative connections that never carry a request.
    private final class FirstStream {
        var deadline: HandshakeDeadlineHandler?
        let metrics: FerryMetrics

        init(deadline: HandshakeDeadlineHandler, metrics: FerryMetrics) {
            self.deadline = deadline
            self.metrics = metrics
        }

        func opened(on channel: Channel) {
            guard let deadline = self.deadline else { return }
            self.deadline = nil
            channel.pipeline.syncOperations.removeHandler(deadline, promise: nil)
            self.metrics.http2ConnectionOpened()
        }
    }
}
