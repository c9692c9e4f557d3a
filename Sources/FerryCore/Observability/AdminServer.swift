import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operator's port (`--admin-listen`): `GET /metrics` in Prometheus text format, and `/healthz`.
/// Kept off the public listeners so metrics never reach clients.
public final class AdminServer: Sendable {
    private let metrics: FerryMetrics
    private let address: ListenAddress
    private let group: EventLoopGroup

    public init(address: ListenAddress, metrics: FerryMetrics, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.address = address
        self.metrics = metrics
        self.group = group
    }

    /// Binds; returns the channel (close it to stop).
    public func start() async throws -> Channel {
        let metrics = self.metrics
        do {
            return try await ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(AdminHandler(metrics: metrics))
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

    private let metrics: FerryMetrics
    private var head: HTTPRequestHead?

    init(metrics: FerryMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?").first.map(String.init) ?? ""
            let (status, type, body): (HTTPResponseStatus, String, String)
            switch (head.method, path) {
            case (.GET, "/metrics"): (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", self.metrics.exposition())
            case (.GET, "/healthz"): (status, type, body) = (.ok, "text/plain; charset=utf-8", "ok\n")
            case (.GET, _): (status, type, body) = (.notFound, "text/plain; charset=utf-8", "not found\n")
            default: (status, type, body) = (.methodNotAllowed, "text/plain; charset=utf-8", "method not allowed\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let done = context.writeAndFlush(Self.wrapOutboundOut(.end(nil)))
            if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        }
    }
}
