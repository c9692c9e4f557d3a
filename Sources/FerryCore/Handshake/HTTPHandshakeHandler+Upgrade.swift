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
                client: self.clientAddress?.logDescription ?? "unknown",
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
            let headers = Self.upgradeResponseHeaders(for: head, subprotocol: plan.subprotocol)
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }

        try backend.pipeline.syncOperations.addHandler(session.backendHandler)
        if let tlsWaiter = try? backend.pipeline.syncOperations.handler(type: BackendTLSHandshakeHandler.self) {
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
        if let encoder = self.httpHandlers.encoder { pipeline.removeHandler(encoder, promise: nil) }
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

    /// The 101 headers. The key was checked by ``UpgradeRequest`` (one base64 value of 16 bytes).
    static func upgradeResponseHeaders(for head: HTTPRequestHead, subprotocol: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketAccept.value(forKey: head.headers["Sec-WebSocket-Key"].first?.trimmingSpaces ?? ""))
        if let subprotocol { headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        return headers
    }
}
