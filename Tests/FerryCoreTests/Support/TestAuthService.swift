// An HTTP service for the `--auth-url` tests: a NIO HTTP/1 server on 127.0.0.1 that answers each
// request as the test says (status, headers, body, a delay) and keeps what it was asked.

import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

final class TestAuthService: Sendable {
    struct Reply: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
        var body: String = ""
        /// How long to wait before answering (a slow service).
        var delay: TimeAmount = .zero

        static func allow(target: String? = nil, maxAge: Int? = nil) -> Reply {
            var reply = Reply()
            if let target { reply.headers.append(("X-Ferry-Target", target)) }
            if let maxAge { reply.headers.append(("Cache-Control", "max-age=\(maxAge)")) }
            return reply
        }

        static func deny(_ status: Int, _ body: String, maxAge: Int? = nil) -> Reply {
            Reply(status: status, headers: maxAge.map { [("Cache-Control", "max-age=\($0)")] } ?? [], body: body)
        }
    }

    /// One request as the service saw it.
    struct Asked: Sendable {
        var uri: String
        var method: HTTPMethod
        var headers: HTTPHeaders
    }

    private let reply: NIOLockedValueBox<@Sendable (Asked) -> Reply>
    private let asked: NIOLockedValueBox<[Asked]>
    private let channel: Channel

    var port: Int { self.channel.localAddress?.port ?? 0 }
    /// `http://127.0.0.1:PORT` (add a path); `https://` for a service started with TLS.
    var base: String { (self.usesTLS ? "https" : "http") + "://127.0.0.1:\(self.port)" }
    let usesTLS: Bool

    private init(channel: Channel, usesTLS: Bool, reply: NIOLockedValueBox<@Sendable (Asked) -> Reply>, asked: NIOLockedValueBox<[Asked]>) {
        self.channel = channel
        self.usesTLS = usesTLS
        self.reply = reply
        self.asked = asked
    }

    /// Starts the service; with `tls`, it speaks HTTPS with that certificate.
    static func start(tls: TestCertificatePair? = nil, _ reply: @escaping @Sendable (Asked) -> Reply) async throws -> TestAuthService {
        let box = NIOLockedValueBox<@Sendable (Asked) -> Reply>(reply)
        let asked = NIOLockedValueBox<[Asked]>([])
        let context = try tls.map { pair in
            try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(pair.certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: pair.keyPath, format: .pem))
            ))
        }
        let channel = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(reply: box, asked: asked))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestAuthService(channel: channel, usesTLS: tls != nil, reply: box, asked: asked)
    }

    /// The requests so far.
    var requests: [Asked] { self.asked.withLockedValue { $0 } }
    var count: Int { self.requests.count }

    /// Answers from now on as `reply` says.
    func answer(_ reply: @escaping @Sendable (Asked) -> Reply) {
        self.reply.withLockedValue { $0 = reply }
    }

    func close() async {
        try? await self.channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let reply: NIOLockedValueBox<@Sendable (Asked) -> Reply>
        let asked: NIOLockedValueBox<[Asked]>
        var head: HTTPRequestHead?

        init(reply: NIOLockedValueBox<@Sendable (Asked) -> Reply>, asked: NIOLockedValueBox<[Asked]>) {
            self.reply = reply
            self.asked = asked
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                break
            case .end:
                guard let head = self.head else { return }
                let request = Asked(uri: head.uri, method: head.method, headers: head.headers)
                self.asked.withLockedValue { $0.append(request) }
                let answer = self.reply.withLockedValue { $0 }(request)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let respond = {
                    let context = loopBound.value
                    var headers = HTTPHeaders(answer.headers)
                    headers.replaceOrAdd(name: "Content-Length", value: "\(answer.body.utf8.count)")
                    let status = HTTPResponseStatus(statusCode: answer.status)
                    context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                    context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
                    context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
                }
                if answer.delay > .zero {
                    context.eventLoop.assumeIsolated().scheduleTask(in: answer.delay) { respond() }
                } else {
                    respond()
                }
            }
        }
    }
}
