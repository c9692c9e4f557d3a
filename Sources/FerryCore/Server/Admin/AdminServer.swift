import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operator's port (`--admin-listen`): `GET /metrics` in Prometheus text format, `/healthz`, and
/// the sessions API (``SessionsRequest``). Kept off the public listeners so metrics never reach
/// clients; ``AdminAccess`` says who may ask.
public final class AdminServer: Sendable {
    private let metrics: FerryMetrics
    private let registry: SessionRegistry
    private let access: AdminAccess
    private let address: ListenAddress
    private let group: EventLoopGroup

    public init(address: ListenAddress, metrics: FerryMetrics, registry: SessionRegistry, access: AdminAccess, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.address = address
        self.metrics = metrics
        self.registry = registry
        self.access = access
        self.group = group
    }

    /// Binds; returns the channel (close it to stop).
    public func start() async throws -> Channel {
        let metrics = self.metrics
        let registry = self.registry
        let access = self.access
        do {
            return try await ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(AdminHandler(metrics: metrics, registry: registry, access: access))
                    }
                }
                .bind(host: self.address.host, port: self.address.port).get()
        } catch {
            throw ListenFailure.configurationError(flag: "--admin-listen", value: self.address.description, error: error)
        }
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let plainText = "text/plain; charset=utf-8"
    /// Request bodies are not used; one larger than this is an error, not something to read.
    private static let maxBodySize = 4096

    private let metrics: FerryMetrics
    private let registry: SessionRegistry
    private let access: AdminAccess
    private var head: HTTPRequestHead?
    private var bodySize = 0

    init(metrics: FerryMetrics, registry: SessionRegistry, access: AdminAccess) {
        self.metrics = metrics
        self.registry = registry
        self.access = access
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.bodySize = 0
        case .body(let body):
            self.bodySize += body.readableBytes
            if self.bodySize > Self.maxBodySize, let head = self.head {
                self.head = nil
                self.respond(.payloadTooLarge, Self.plainText, "request body too large\n", head: head, forceClose: true, context: context)
            }
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if path == "/" || path == "/index.html" {
            self.answerPage(head, context: context)
            return
        }
        guard self.access.allows(authorization: head.headers.first(name: "Authorization")) else {
            var headers = HTTPHeaders()
            headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"ferry admin\"")
            self.respond(.unauthorized, Self.plainText, "this admin port needs Authorization: Bearer with the --admin-token\n", head: head, extraHeaders: headers, context: context)
            return
        }
        let sessions: SessionsRequest?
        do {
            sessions = try SessionsRequest.parse(method: head.method, uri: head.uri)
        } catch {
            self.respond(error.status, Self.plainText, error.message + "\n", head: head, context: context)
            return
        }
        if let sessions {
            guard self.sessionsAllowed(head, context: context) else { return }
            self.answerSessions(sessions, head: head, context: context)
            return
        }
        switch (head.method, path) {
        case (.GET, "/metrics"): self.respond(.ok, "text/plain; version=0.0.4; charset=utf-8", self.metrics.exposition(), head: head, context: context)
        case (.GET, "/healthz"): self.respond(.ok, Self.plainText, "ok\n", head: head, context: context)
        case (.GET, _): self.respond(.notFound, Self.plainText, "not found\n", head: head, context: context)
        default: self.respond(.methodNotAllowed, Self.plainText, "method not allowed\n", head: head, context: context)
        }
    }

    /// The page holds no data, so it needs no token (it asks for one); it is served where the
    /// sessions API is.
    private func answerPage(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard head.method == .GET || head.method == .HEAD else {
            self.respond(.methodNotAllowed, Self.plainText, "method not allowed\n", head: head, context: context)
            return
        }
        guard self.sessionsAllowed(head, context: context) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Security-Policy", value: AdminPage.contentSecurityPolicy)
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        self.respond(.ok, "text/html; charset=utf-8", AdminPage.html, head: head, extraHeaders: headers, context: context)
    }

    /// Answers 403 (and returns false) where the sessions API is not served: a non-loopback port
    /// without a token, or a `Host` that is not this host's (see ``AdminAccess/allowsHost(_:)``).
    private func sessionsAllowed(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Bool {
        guard self.access.servesSessions else {
            self.respond(.forbidden, Self.plainText, "the sessions API on a non-loopback --admin-listen needs --admin-token FILE\n", head: head, context: context)
            return false
        }
        guard self.access.allowsHost(head.headers.first(name: "Host")) else {
            self.respond(.forbidden, Self.plainText, "without --admin-token the sessions API answers only to localhost or an IP address in Host\n", head: head, context: context)
            return false
        }
        return true
    }

    private func answerSessions(_ request: SessionsRequest, head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch request {
        case .list:
            let live = self.registry.liveSessions
            let reads = live.map { id, handle in handle.counters().map { (id: id, facts: handle.facts, counters: $0) } }
            EventLoopFuture.whenAllComplete(reads, on: context.eventLoop).assumeIsolated().whenSuccess { results in
                // A session whose loop could not answer ended meanwhile: it is left out.
                let sessions = results.compactMap { try? $0.get() }
                self.respond(.ok, "application/json", SessionsListing.json(sessions), head: head, context: context)
            }
        case .closeOne(let id, let code):
            if self.registry.closeSession(id: id, code: code, reason: SessionsRequest.reason) {
                self.respond(.ok, "application/json", "{\"closed\":1}\n", head: head, context: context)
            } else {
                self.respond(.notFound, Self.plainText, "no live session \(id)\n", head: head, context: context)
            }
        case .closeByToken(let fingerprint, let code):
            let closed = self.registry.closeSessions(tokenFingerprints: [fingerprint], code: code, reason: SessionsRequest.reason)
            self.respond(.ok, "application/json", "{\"closed\":\(closed)}\n", head: head, context: context)
        }
    }

    private func respond(
        _ status: HTTPResponseStatus,
        _ type: String,
        _ body: String,
        head: HTTPRequestHead,
        extraHeaders: HTTPHeaders = HTTPHeaders(),
        forceClose: Bool = false,
        context: ChannelHandlerContext
    ) {
        var headers = extraHeaders
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Cache-Control", value: "no-store")
        let keepAlive = head.isKeepAlive && !forceClose
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}
