import NIOCore
import NIOHTTP1
import NIOPosix
import NIOConcurrencyHelpers

/// The authorization service the auth scenario's `--auth-url` points at: it allows every request,
/// names the echo backend in `X-Ferry-Target` and lets the answer be cached for a minute. It counts
/// the requests and the connections the relay opens to it, so the run shows how many times the relay
/// asked per handshake and whether it kept its connections.
final class BenchAuthService: Sendable {
    private let channel: Channel
    private let counts: Counts

    private struct Tally {
        var requests = 0
        var connections = 0
    }
    private typealias Counts = NIOLockedValueBox<Tally>

    var port: Int { self.channel.localAddress?.port ?? 0 }
    var requests: Int { self.counts.withLockedValue { $0.requests } }
    var connections: Int { self.counts.withLockedValue { $0.connections } }

    private init(channel: Channel, counts: Counts) {
        self.channel = channel
        self.counts = counts
    }

    static func start(target: String, group: EventLoopGroup) async throws -> BenchAuthService {
        let counts = Counts(Tally())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                counts.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AllowHandler(target: target, counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return BenchAuthService(channel: channel, counts: counts)
    }

    func stop() async {
        try? await self.channel.close()
    }

    private final class AllowHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let head: HTTPResponseHead
        private let counts: Counts

        init(target: String, counts: Counts) {
            let headers = HTTPHeaders([("X-Ferry-Target", target), ("Cache-Control", "max-age=60"), ("Content-Length", "0")])
            self.head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            self.counts = counts
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = Self.unwrapInboundIn(data) else { return }
            self.counts.withLockedValue { $0.requests += 1 }
            context.write(Self.wrapOutboundOut(.head(self.head)), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
