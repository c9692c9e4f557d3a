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

    /// The handlers an upgrade removes: HTTP/1.1's parser and encoder on a connection, the request
    /// codec on an HTTP/2 stream.
    struct HTTPHandlers {
        var deadline: HandshakeDeadlineHandler
        var decoder: ByteToMessageHandler<HTTPRequestDecoder>?
        var encoder: HTTPResponseEncoder?
        var http2Codec: HTTP2RequestCodec? = nil
        /// On an HTTP/2 stream: whether its connection is ending.
        var http2Connection: HTTP2ConnectionStatus? = nil
    }

    /// How long past the handshake budget a 504 decided at its end may take to get out.
    static let answerGrace = TimeAmount.seconds(1)

    /// Bodies are never expected on these requests; a little is tolerated and ignored.
    static let maxIgnoredBody = 16 * 1024

    let services: HandshakeServices
    let httpHandlers: HTTPHandlers
    var state = HandshakeState.awaitingHead
    var bodyBytes = 0
    var removed = false
    /// The client closed its sending side (see ``clientClosedInput(context:)``).
    var inputClosed = false
    var logger: Logger
    /// The client: the TCP peer, or who a trusted proxy says it is (PROXY header, forwarding headers).
    var clientAddress: SocketAddress?

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
    func clientClosedInput(context: ChannelHandlerContext) {
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

    static let halfClosedUpgrade = HandshakeRejection.badRequest(
        "the client closed its sending side before the upgrade; a WebSocket session needs both directions"
    )

    /// The client's key for per-address limits ("unix" for every Unix-socket client).
    var clientKey = "unknown"
    /// The client as logs show it.
    var clientDescription = "unknown"

    /// Both texts are made here, once: formatting an address takes a few allocations, and a
    /// handshake reads them several times.
    func setClient(_ address: SocketAddress) {
        self.clientAddress = address
        self.clientKey = address.limitKey
        self.clientDescription = address.logDescription
        self.logger[metadataKey: "client"] = .string(self.clientDescription)
    }

    /// Believes `X-Forwarded-For` / `Forwarded` only from a trusted peer: the TCP peer, or the client a
    /// PROXY header named (so a client behind a layer-4 balancer cannot claim another address), or a
    /// Unix-socket client with `--trusted-proxy unix`.
    func applyForwardingHeaders(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
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
    func move(to next: HandshakeState, context: ChannelHandlerContext) -> Bool {
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

    // MARK: Deciding

    func requestComplete(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.applyForwardingHeaders(head, context: context)
        switch UpgradeRequest(head) {
        case .plain:
            self.answerPlainRequest(head, context: context)
        case .rejected(let rejection):
            self.refuse(rejection, head: head, context: context)
        case .upgrade(let handshake):
            if !self.services.handshakeRate.allow(self.clientKey) {
                self.refuse(HandshakeRejection(.tooManyRequests, "too many handshakes from this address; slow down"), head: head, context: context)
                return
            }
            guard self.move(to: .deciding, context: context) else { return }
            // The identity comes from the verified certificate only, never from request headers.
            let tlsHandler = self.tlsHandler(context: context)
            let identity = tlsHandler?.peerCertificate.map(ClientIdentity.init(certificate:))
            // A decision that waits (the --auth-url service) ends inside the budget; its answer may
            // take a moment past it to get out.
            self.httpHandlers.deadline.allowAnswer(grace: Self.answerGrace)
            self.services.policy.decide(
                head: head,
                handshake: handshake,
                clientIdentity: identity,
                clientAddress: self.clientKey,
                secure: tlsHandler != nil,
                deadline: self.httpHandlers.deadline.deadline,
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

}

extension HTTPHandshakeHandler {
    /// The connection's TLS handler: in this pipeline, or, on an HTTP/2 stream, in its connection's
    /// (the parent of a stream channel; an accepted connection's parent is the listener, elsewhere).
    func tlsHandler(context: ChannelHandlerContext) -> NIOSSLServerHandler? {
        guard self.httpHandlers.http2Codec != nil else {
            return try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        }
        return context.channel.parent.flatMap { try? $0.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) }
    }
}

@available(*, unavailable)
extension HTTPHandshakeHandler: Sendable {}
