import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// The 101 and the rewiring of both pipelines once the backend is connected.
extension HTTPHandshakeHandler {
    /// Writes the 101 and rewires both pipelines: the HTTP handlers leave the client's, the frame
    /// codec and the session's handlers take their place; the backend gets its handler.
    func upgrade(
        _ plan: UpgradePlan,
        head: HTTPRequestHead,
        backend: Channel,
        slot: UInt64,
        started: NIODeadline,
        context: ChannelHandlerContext
    ) throws {
        let http2Codec = self.httpHandlers.http2Codec
        self.move(to: .done, context: context)

        let services = self.services
        let session = SessionAssembly(
            SessionAssembly.Description(
                client: self.clientDescription,
                via: self.clientAddress == context.channel.remoteAddress ? nil : context.channel.remoteAddress?.logDescription,
                route: plan.route.path,
                target: plan.target.description,
                tokenFingerprint: plan.tokenFingerprint,
                expiresAt: plan.expiresAt,
                // From the verified certificate, as the policy saw it; never from request headers.
                clientCertificateCN: self.tlsHandler(context: context)?.peerCertificate.flatMap { ClientIdentity(certificate: $0).commonName },
                inPool: plan.route.isPool,
                overHTTP2: http2Codec != nil
            ),
            slot: slot,
            started: started,
            shared: services.sessionParts,
            logger: self.logger,
            eventLoop: context.eventLoop
        )

        // The session is live (a shutdown or a revocation reaches it) before the client can see its
        // answer: 101 on HTTP/1.1; on HTTP/2 a 200 that leaves the stream open (RFC 8441 §5).
        if http2Codec != nil {
            let headers = Self.http2UpgradeResponseHeaders(subprotocol: plan.subprotocol)
            context.writeAndFlush(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))), promise: nil)
        } else {
            // Written as bytes, past the encoder, which leaves first (see `switchingProtocols`).
            if let encoder = self.httpHandlers.encoder { context.pipeline.syncOperations.removeHandler(encoder, promise: nil) }
            let response = Self.switchingProtocols(for: head, subprotocol: plan.subprotocol, allocator: context.channel.allocator)
            context.writeAndFlush(NIOAny(response), promise: nil)
        }

        try backend.pipeline.syncOperations.addHandler(session.backendHandler)
        if case .tls = plan.target, let tlsWaiter = try? backend.pipeline.syncOperations.handler(type: BackendTLSHandshakeHandler.self) {
            // Hands on what the backend sent right after its TLS handshake.
            backend.pipeline.syncOperations.removeHandler(tlsWaiter, promise: nil)
        }
        let pipeline = context.pipeline.syncOperations
        var sessionHandlers: [ChannelHandler] = [
            WebSocketFrameEncoder(),
            WebSocketStreamDecoder(
                role: .server,
                maxMessageSize: services.limits.maxMessageSize,
                pool: services.payloadPools.pool(for: context.eventLoop)
            ),
            session.clientHandler,
        ]
        if let http2Codec {
            sessionHandlers.insert(HTTP2TunnelHandler(earlyBytes: http2Codec.earlyBytes, closeTimeout: services.limits.closeTimeout), at: 0)
        }
        try pipeline.addHandlers(sessionHandlers, position: .after(self))
        pipeline.removeHandler(self.httpHandlers.deadline, promise: nil)
        pipeline.removeHandler(context: context, promise: nil)
        if let http2Codec { pipeline.removeHandler(http2Codec, promise: nil) }
        if let decoder = self.httpHandlers.decoder {
            // Removing the decoder hands any bytes that came after the request to the frame decoder, as
            // a read with no read-complete after it; one is fired so those bytes are flushed to the backend.
            let channel = context.channel
            let decoderRemoved = context.eventLoop.makePromise(of: Void.self)
            pipeline.removeHandler(decoder, promise: decoderRemoved)
            decoderRemoved.futureResult.assumeIsolated().whenSuccess {
                channel.pipeline.syncOperations.fireChannelReadComplete()
            }
        }

        backend.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in backend.close(promise: nil) }
        context.channel.read()
        if !session.tokenStillValid { session.splice.close(code: 1008, reason: "token revoked") }
        if let request = plan.callbackRequest, let revalidation = services.policy.authorizer?.revalidation {
            revalidation.watch(session: slot, request: request)
        }
        self.logger.debug("session started", metadata: ["route": "\(plan.route.path)", "target": "\(plan.target)"])
    }

    /// The 200 that opens an HTTP/2 WebSocket stream carries only the chosen subprotocol: no key,
    /// no accept value (RFC 8441 §5).
    static func http2UpgradeResponseHeaders(subprotocol: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
        return headers
    }

    /// The 101 as bytes. Its fields are fixed but for the accept value and the subprotocol, so it is
    /// written directly instead of as an `HTTPHeaders` for NIO's encoder to serialize: about ten
    /// allocations fewer per upgrade. The key was checked by ``UpgradeRequest`` (one base64 value of
    /// 16 bytes); the subprotocol is one Ferry chose from its own list.
    static func switchingProtocols(for head: HTTPRequestHead, subprotocol: String?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160)
        buffer.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(WebSocketAccept.value(forKey: head.headers.single(named: "Sec-WebSocket-Key") ?? ""))
        if let subprotocol {
            buffer.writeStaticString("\r\nSec-WebSocket-Protocol: ")
            buffer.writeString(subprotocol)
        }
        buffer.writeStaticString("\r\n\r\n")
        return buffer
    }
}
