import NIOCore
import NIOWebSocket

/// One `ferry connect` session: opens the WebSocket on the local channel's own event loop, then puts
/// the splice and its handlers on both channels and lets them read. The local channel must have
/// auto-read off until then (nothing is read before there is somewhere to send it) and allow
/// half-closure.
public enum ConnectSession {
    /// Starts a session for `local`. The future fails with a ``ConnectFailure`` when the WebSocket
    /// cannot be opened (the local channel is closed then), and otherwise succeeds once both
    /// channels are closed, saying how the session ended.
    /// - Parameter pools: buffers for what the relay sends, one pool per event loop (see
    ///   ``PayloadBufferPool``); without them every read allocates.
    public static func start(local: Channel, dialer: WebSocketDialer, pools: PayloadBufferPools? = nil) -> EventLoopFuture<SessionEnd> {
        let eventLoop = local.eventLoop
        let ended = eventLoop.makePromise(of: SessionEnd.self)
        dialer.connect(on: eventLoop).whenComplete { result in
            switch result {
            case .failure(let error):
                local.close(promise: nil)
                ended.fail(error)
            case .success(let webSocket):
                do {
                    try Self.wire(local: local, webSocket: webSocket, configuration: dialer.configuration, pool: pools?.pool(for: eventLoop), ended: ended)
                } catch {
                    local.close(promise: nil)
                    webSocket.close(promise: nil)
                    ended.fail(ConnectFailure.notWebSocket(reason: "the session could not be set up: \(error)"))
                }
            }
        }
        return ended.futureResult
    }

    /// Runs on the event loop both channels share.
    private static func wire(local: Channel, webSocket: Channel, configuration: ConnectConfiguration, pool: PayloadBufferPool?, ended: EventLoopPromise<SessionEnd>) throws {
        let parts = ClientSessionParts(configuration: configuration) { end in ended.succeed(end) }
        let relayPipeline = webSocket.pipeline.syncOperations
        try relayPipeline.addHandlers(parts.relayHandlers(pool: pool))
        try local.pipeline.syncOperations.addHandler(parts.local)
        // The reader leaves last: bytes that came with the 101 go to the decoder on their way out.
        let reader = try relayPipeline.handler(type: UpgradeResponseReader.self)
        relayPipeline.removeHandler(reader, promise: nil)
        // What the local side delivered while the WebSocket opened goes to the session now.
        if let early = try? local.pipeline.syncOperations.handler(type: EarlyLocalInput.self) {
            local.pipeline.syncOperations.removeHandler(early, promise: nil)
        }
        // A local connection that went away while the WebSocket opened ends the session at once.
        if !local.isActive { parts.splice.localGone() }
        webSocket.setOption(.autoRead, value: true).whenFailure { _ in webSocket.close(promise: nil) }
        local.setOption(.autoRead, value: true).whenFailure { _ in local.close(promise: nil) }
    }
}

/// What a client session is made of, put together in one place: the splice and the handlers of its
/// two channels.
struct ClientSessionParts {
    let splice: ClientSplice
    let local: LocalSideHandler
    let relay: WebSocketSideHandler

    init(configuration: ConnectConfiguration, onEnd: @escaping (SessionEnd) -> Void) {
        self.splice = ClientSplice(onEnd: onEnd)
        self.local = LocalSideHandler(owner: self.splice, closeTimeout: configuration.closeTimeout)
        self.relay = WebSocketSideHandler(splice: self.splice, keepalive: configuration.keepaliveLimits, closeTimeout: configuration.closeTimeout)
        self.splice.attach(local: self.local, relay: self.relay)
    }

    /// The WebSocket channel's handlers after the 101, in pipeline order: frames out masked, frames
    /// in decoded as a client decodes them (a masked frame from the relay is a protocol error).
    func relayHandlers(pool: PayloadBufferPool?) -> [ChannelHandler] {
        [MaskingFrameEncoder(), WebSocketStreamDecoder(role: .client, pool: pool), self.relay]
    }
}
