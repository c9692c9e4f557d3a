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
        let headers = Self.upgradeResponseHeaders(for: head, subprotocol: plan.subprotocol)
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
                clientCertificateCN: (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?
                    .peerCertificate.flatMap { ClientIdentity(certificate: $0).commonName },
                inPool: plan.route.isPool
            ),
            slot: slot,
            started: started,
            shared: services.sessionParts,
            logger: self.logger,
            eventLoop: context.eventLoop
        )

        // The session is live (a shutdown or a revocation reaches it) before the client can see its 101.
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)

        try backend.pipeline.syncOperations.addHandler(session.backendHandler)
        if let tlsWaiter = try? backend.pipeline.syncOperations.handler(type: BackendTLSHandshakeHandler.self) {
            // Hands on what the backend sent right after its TLS handshake.
            backend.pipeline.syncOperations.removeHandler(tlsWaiter, promise: nil)
        }
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandlers(
            [
                WebSocketFrameEncoder(),
                WebSocketStreamDecoder(
                    role: .server,
                    maxMessageSize: services.limits.maxMessageSize,
                    pool: services.payloadPools.pool(for: context.eventLoop)
                ),
                session.clientHandler,
            ],
            position: .after(self)
        )
        pipeline.removeHandler(self.httpHandlers.encoder, promise: nil)
        pipeline.removeHandler(self.httpHandlers.deadline, promise: nil)
        pipeline.removeHandler(context: context, promise: nil)
        // Removing the decoder hands any bytes that came after the request to the frame decoder, as a
        // read with no read-complete after it; one is fired so those bytes are flushed to the backend.
        let channel = context.channel
        let decoderRemoved = context.eventLoop.makePromise(of: Void.self)
        pipeline.removeHandler(self.httpHandlers.decoder, promise: decoderRemoved)
        decoderRemoved.futureResult.assumeIsolated().whenSuccess {
            channel.pipeline.syncOperations.fireChannelReadComplete()
        }

        backend.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in backend.close(promise: nil) }
        context.channel.read()
        if !session.tokenStillValid { session.splice.close(code: 1008, reason: "token revoked") }
        if let request = plan.callbackRequest, let revalidation = services.policy.authorizer?.revalidation {
            revalidation.watch(session: slot, request: request)
        }
        self.logger.debug("session started", metadata: ["route": "\(plan.route.path)", "target": "\(plan.target)"])
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
