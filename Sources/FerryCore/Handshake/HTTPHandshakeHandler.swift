import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// Answers the HTTP request that opens a connection: validates the WebSocket handshake, asks the
/// ``UpgradePolicy``, reserves a session slot, connects the backend, and only then answers 101 and turns
/// the pipeline into a spliced session. Every refusal gets its status and a one-line body, then the
/// connection is closed; nothing reaches a backend before the 101.
///
/// NIO's `HTTPServerUpgradeHandler` writes nothing when an upgrade is refused and cannot hold the 101
/// back until a backend connect succeeds, so this handler does the upgrade itself.
final class HTTPHandshakeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The handlers an upgrade removes.
    struct HTTPHandlers {
        var deadline: HandshakeDeadlineHandler
        var decoder: ByteToMessageHandler<HTTPRequestDecoder>
        var encoder: HTTPResponseEncoder
    }

    /// How long past the handshake budget a 504 decided at its end may take to get out.
    private static let answerGrace = TimeAmount.seconds(1)

    /// Bodies are never expected on these requests; a little is tolerated and ignored.
    private static let maxIgnoredBody = 16 * 1024

    private let services: HandshakeServices
    private let httpHandlers: HTTPHandlers
    private var state = HandshakeState.awaitingHead
    private var bodyBytes = 0
    private var removed = false
    /// The client closed its sending side (see ``clientClosedInput(context:)``).
    private var inputClosed = false
    private var logger: Logger
    /// The client: the TCP peer, or who a trusted proxy says it is (PROXY header, forwarding headers).
    private var clientAddress: SocketAddress?

    init(services: HandshakeServices, httpHandlers: HTTPHandlers) {
        self.services = services
        self.httpHandlers = httpHandlers
        self.logger = services.logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let remote = context.channel.remoteAddress { self.setClient(remote) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let proxied = event as? ProxiedClientAddress {
            self.setClient(proxied.address)
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.clientClosedInput(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client closed its sending side: a half-close, or a hang-up (TCP cannot tell them apart).
    /// A request already read is still answered, so `printf … | nc -N` gets its page or its refusal.
    /// An upgrade does not go on to a backend, though: WebSocket has no half-close, so the session
    /// could never hear from the client, and a client that hung up must not hold a slot (nginx
    /// likewise gives up on the upstream when the client closes while it waits). It gets a 400
    /// saying so instead of a 101.
    private func clientClosedInput(context: ChannelHandlerContext) {
        self.inputClosed = true
        switch self.state {
        case .awaitingHead, .readingBody:
            context.close(promise: nil)
        case .connecting:
            self.callOffConnect(why: "client closed its side during the backend connect", context: context)
            self.refuse(Self.halfClosedUpgrade, head: nil, context: context)
        case .deciding, .done:
            break
        }
    }

    private static let halfClosedUpgrade = HandshakeRejection.badRequest(
        "the client closed its sending side before the upgrade; a WebSocket session needs both directions"
    )

    /// The client's key for per-address limits ("unix" for every Unix-socket client).
    private var clientKey: String { self.clientAddress?.limitKey ?? "unknown" }

    private func setClient(_ address: SocketAddress) {
        self.clientAddress = address
        self.logger[metadataKey: "client"] = "\(address.logDescription)"
    }

    /// Believes `X-Forwarded-For` / `Forwarded` only from a trusted peer: the TCP peer, or the client a
    /// PROXY header named (so a client behind a layer-4 balancer cannot claim another address), or a
    /// Unix-socket client with `--trusted-proxy unix`.
    private func applyForwardingHeaders(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let peer = self.clientAddress,
            let forwarded = ForwardedFor.client(
                peer: peer,
                headers: head.headers,
                trusted: self.services.trustedProxies,
                trustsUnixSocketPeers: self.services.trustsUnixSocketPeers
            ),
            let address = try? SocketAddress(ipAddress: forwarded, port: 0)
        else { return }
        self.setClient(address)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.removed = true
    }

    /// Every state change goes through here; a move the table does not allow closes the connection.
    @discardableResult
    private func move(to next: HandshakeState, context: ChannelHandlerContext) -> Bool {
        guard self.state.move(to: next) else {
            self.logger.error("handshake in an unexpected state; closing the connection", metadata: ["state": "\(self.state.name)", "next": "\(next.name)"])
            self.state = .done
            context.close(promise: nil)
            return false
        }
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (Self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .awaitingHead):
            self.move(to: .readingBody(head), context: context)
        case (.body(let body), .readingBody):
            self.bodyBytes += body.readableBytes
            if self.bodyBytes > Self.maxIgnoredBody {
                self.refuse(HandshakeRejection(.payloadTooLarge, "request body too large"), head: nil, context: context)
            }
        case (.end, .readingBody(let head)):
            self.requestComplete(head, context: context)
        default:
            break  // anything after the first request is ignored: every non-101 answer closes the connection
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError {
            self.services.metrics.tlsHandshakeFailed()
        }
        guard let error = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        switch self.state {
        case .awaitingHead, .readingBody:
            let rejection: HandshakeRejection =
                error == .headerOverflow ? .headersTooLarge : .badRequest("malformed HTTP request")
            self.refuse(rejection, head: nil, context: context)
        case .deciding, .connecting, .done:
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        // While deciding or connecting the upgrade reads again once the session is spliced; a refusal
        // closes the connection.
        if !self.state.holdsReads { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.callOffConnect(why: "client left during the backend connect", context: context)
        self.move(to: .done, context: context)
        context.fireChannelInactive()
    }

    /// The client left while its backend was connecting: the connect is called off and the slot
    /// freed now, not when the connect gives up. Back to `.deciding`: a refusal may still be sent.
    private func callOffConnect(why: String, context: ChannelHandlerContext) {
        guard case .connecting(let slot, let attempt, let budget) = self.state else { return }
        self.move(to: .deciding, context: context)
        budget.cancel()
        attempt.cancel()
        self.services.registry.release(slot)
        self.logger.debug("backend connect called off", metadata: ["reason": "\(why)"])
    }

    // MARK: Deciding

    private func requestComplete(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.applyForwardingHeaders(head, context: context)
        switch UpgradeRequest(head) {
        case .plain:
            self.answerPlainRequest(head, context: context)
        case .rejected(let rejection):
            self.refuse(rejection, head: head, context: context)
        case .upgrade(let handshake):
            if let rate = self.services.handshakeRate, !rate.allow(self.clientKey) {
                self.refuse(HandshakeRejection(.tooManyRequests, "too many handshakes from this address; slow down"), head: head, context: context)
                return
            }
            guard self.move(to: .deciding, context: context) else { return }
            // The identity comes from the verified certificate only, never from request headers.
            let identity = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?
                .peerCertificate.map(ClientIdentity.init(certificate:))
            self.services.policy.decide(
                head: head,
                handshake: handshake,
                clientIdentity: identity,
                clientAddress: self.clientKey,
                eventLoop: context.eventLoop
            )
                .assumeIsolated()
                .whenComplete { result in
                    switch result {
                    case .success(let plan):
                        self.connectBackend(plan, head: head, context: context)
                    case .failure(let error):
                        self.refuse(Self.rejection(for: error), head: head, context: context)
                    }
                }
        }
    }

    private func connectBackend(_ plan: UpgradePlan, head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard !self.removed, context.channel.isActive, case .deciding = self.state else { return }
        guard !self.inputClosed else {
            self.refuse(Self.halfClosedUpgrade, head: head, context: context)
            return
        }
        let slot: UInt64
        switch self.services.registry.reserve(address: self.clientKey, tokenFingerprint: plan.tokenFingerprint) {
        case .success(let id):
            slot = id
        case .failure(.full):
            self.refuse(.tooManyConnections, head: head, context: context)
            return
        case .failure(.fullForAddress):
            self.refuse(HandshakeRejection(.serviceUnavailable, "too many connections from this address"), head: head, context: context)
            return
        }
        let started = NIODeadline.now()
        // The connect ends inside the handshake budget, so the client gets a 504 rather than the
        // deadline's bare close when a backend does not answer.
        let budget = (self.httpHandlers.deadline.deadline ?? started + self.services.limits.handshakeTimeout) - started
        guard budget > .zero else {
            self.services.registry.release(slot)
            self.refuse(BackendConnector.Failure.timedOut.rejection, head: head, context: context)
            return
        }
        self.httpHandlers.deadline.allowAnswer(grace: Self.answerGrace)
        // The backend learns the real client before any other byte, TLS handshake included (PROXY v2).
        var proxyHeader: ByteBuffer?
        if plan.route.options.sendsProxyHeader, let source = self.clientAddress, let destination = context.channel.localAddress {
            proxyHeader = ProxyHeaderParser.v2Header(source: source, destination: destination, allocator: context.channel.allocator)
        }
        let attempt = BackendConnectAttempt()
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: budget) {
            // DNS, the connect and a backend TLS handshake together ran past the budget. Answered
            // first: calling the connect off fails its future at once, and that answer is then ignored.
            self.connectFinished(.failure(BackendConnector.Failure.timedOut), plan: plan, head: head, slot: slot, started: started, context: context)
            attempt.cancel()
        }
        guard self.move(to: .connecting(slot: slot, attempt: attempt, budget: timer), context: context) else {
            timer.cancel()
            self.services.registry.release(slot)
            return
        }
        self.services.connector.connect(
            to: plan.target,
            options: plan.route.options,
            proxyHeader: proxyHeader,
            timeout: budget,
            attempt: attempt,
            on: context.eventLoop
        )
            .assumeIsolated()
            .whenComplete { result in
                self.connectFinished(result, plan: plan, head: head, slot: slot, started: started, context: context)
            }
    }

    private func connectFinished(
        _ result: Result<Channel, Error>,
        plan: UpgradePlan,
        head: HTTPRequestHead,
        slot: UInt64,
        started: NIODeadline,
        context: ChannelHandlerContext
    ) {
        guard case .connecting(let current, _, let budget) = self.state, current == slot else {
            // The client left, or the budget ran out, first: the slot is free already.
            if case .success(let backend) = result { backend.close(promise: nil) }
            return
        }
        budget.cancel()
        self.move(to: .deciding, context: context)
        switch result {
        case .success(let backend):
            do {
                try self.upgrade(plan, head: head, backend: backend, slot: slot, started: started, context: context)
            } catch {
                backend.close(promise: nil)
                self.services.registry.release(slot)
                self.logger.error("upgrade failed", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            }
        case .failure(let error):
            self.services.registry.release(slot)
            let failure = error as? BackendConnector.Failure ?? .unreachable("\(error)")
            var logger = self.logger
            logger[metadataKey: "target"] = "\(plan.target)"
            switch failure {
            case .unreachable(let why), .tlsFailed(let why): logger[metadataKey: "error"] = "\(why)"
            case .timedOut: break
            }
            self.refuse(failure.rejection, head: head, context: context, logger: logger)
        }
    }

    // MARK: Upgrading

    /// Writes the 101 and rewires both pipelines: the HTTP handlers leave the client's, the frame
    /// codec and the session's handlers take their place; the backend gets its handler.
    private func upgrade(
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
                expiresAt: plan.expiresAt
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
        self.logger.debug("session started", metadata: ["route": "\(plan.route.path)", "target": "\(plan.target)"])
    }

    /// The 101 headers. The key was checked by ``UpgradeRequest`` (one base64 value of 16 bytes).
    private static func upgradeResponseHeaders(for head: HTTPRequestHead, subprotocol: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketAccept.value(forKey: head.headers["Sec-WebSocket-Key"].first?.trimmingSpaces ?? ""))
        if let subprotocol { headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        return headers
    }

    // MARK: Answers

    private func answerPlainRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch self.services.plainRequests.answer(head) {
        case .respond(let status, let contentType, let body, let headers):
            self.respond(status, contentType: contentType, body: body, headers: headers, head: head, context: context)
        case .refuse(let rejection, let level):
            self.refuse(rejection, head: head, context: context, level: level)
        case .files(let files):
            self.move(to: .done, context: context)
            let channel = context.channel
            files.respond(to: head, on: channel).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func refuse(
        _ rejection: HandshakeRejection,
        head: HTTPRequestHead?,
        context: ChannelHandlerContext,
        logger: Logger? = nil,
        level: Logger.Level = .info
    ) {
        let path = head.map { String($0.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }
        guard !self.removed, context.channel.isActive else {
            // Logged as what the client got: nothing (the handshake deadline, or the client, closed first).
            (logger ?? self.logger).debug(
                "connection closed before its answer",
                metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.message)", "path": "\(path ?? "-")"]
            )
            return
        }
        self.services.metrics.handshakeRefused(status: rejection.status.code)
        (logger ?? self.logger).log(
            level: level,
            "handshake refused",
            metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.message)", "path": "\(path ?? "-")"]
        )
        self.respond(
            rejection.status,
            contentType: "text/plain; charset=utf-8",
            body: rejection.message + "\n",
            headers: rejection.headers,
            head: head,
            context: context
        )
    }

    /// Writes a complete response and closes the connection after it.
    private func respond(
        _ status: HTTPResponseStatus,
        contentType: String,
        body: String,
        headers extra: HTTPHeaders,
        head: HTTPRequestHead?,
        context: ChannelHandlerContext
    ) {
        guard !self.removed, context.channel.isActive else { return }
        if case .done = self.state { return }
        self.move(to: .done, context: context)
        var headers = extra
        headers.replaceOrAdd(name: "Content-Type", value: contentType)
        headers.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
        headers.replaceOrAdd(name: "Connection", value: "close")
        headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if head?.method != .HEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private static func rejection(for error: Error) -> HandshakeRejection {
        if let rejection = error as? HandshakeRejection { return rejection }
        return HandshakeRejection(.internalServerError, "internal error")
    }
}

@available(*, unavailable)
extension HTTPHandshakeHandler: Sendable {}
