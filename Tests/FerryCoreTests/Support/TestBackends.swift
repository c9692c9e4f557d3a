import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a test backend does with each connection it accepts.
enum BackendBehavior: Sendable {
    /// Writes back everything it reads.
    case echo
    /// Reads and keeps everything (up to a cap), and reports how the connection ended. If `paused`,
    /// it reads nothing (with a small receive buffer) until ``TestBackend/resumeReading()``, to make
    /// a writer stall.
    case sink(keepAtMost: Int, paused: Bool = false)
    /// Sends these bytes, then closes.
    case source(ByteBuffer)
    /// Writes `total` bytes of `pattern` as fast as the connection takes them (counting what the
    /// kernel accepted in ``TestBackend/bytesWritten``), then closes.
    case flood(total: Int, pattern: BytePattern)
    /// Sends `greeting`, then resets the connection (RST) 200 ms later.
    case reset(greeting: String)
}

/// What a sink saw on one connection when it ended.
struct SinkReport: Sendable {
    /// Bytes received in total.
    var byteCount: Int
    /// The first `keepAtMost` bytes received.
    var kept: ByteBuffer
    /// True if the peer's FIN was seen (a clean end of stream) before any error.
    var sawEOF: Bool
    /// The error that ended the connection, if one did (a reset, for instance).
    var error: String?
}

enum BackendEvent: Sendable {
    case accepted
    case sinkEnded(SinkReport)
    case closed
}

/// A TCP (or Unix-socket) server on NIO standing in for the relay's backend.
final class TestBackend: Sendable {
    let serverChannel: Channel
    let events: Mailbox<BackendEvent>
    private let shared: Shared

    /// State the handlers on the event loops update and the test reads.
    fileprivate final class Shared: Sendable {
        let accepted = NIOLockedValueBox<[Channel]>([])
        let bytesWritten = NIOLockedValueBox(0)
    }

    private init(serverChannel: Channel, events: Mailbox<BackendEvent>, shared: Shared) {
        self.serverChannel = serverChannel
        self.events = events
        self.shared = shared
    }

    /// Connections accepted so far.
    var accepted: Int { self.shared.accepted.withLockedValue { $0.count } }

    /// For `.flood`: bytes the kernel has taken so far, over all connections.
    var bytesWritten: Int { self.shared.bytesWritten.withLockedValue { $0 } }

    /// For a paused `.sink`: starts reading on every connection.
    func resumeReading() async throws {
        for channel in self.shared.accepted.withLockedValue({ $0 }) {
            try await channel.setOption(.autoRead, value: true).get()
        }
    }

    var address: SocketAddress { self.serverChannel.localAddress! }

    /// The relay route target for this backend.
    var target: BackendTarget {
        switch self.address {
        case .unixDomainSocket:
            return .unix(path: self.address.pathname ?? "")
        default:
            return .tcp(host: self.address.ipAddress!, port: self.address.port!)
        }
    }

    static func start(_ behavior: BackendBehavior, host: String = "127.0.0.1") async throws -> TestBackend {
        try await self.start(behavior) { bootstrap in try await bootstrap.bind(host: host, port: 0).get() }
    }

    static func start(_ behavior: BackendBehavior, unixSocketPath path: String) async throws -> TestBackend {
        try await self.start(behavior) { bootstrap in
            try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }

    private static func start(
        _ behavior: BackendBehavior,
        bind: (ServerBootstrap) async throws -> Channel
    ) async throws -> TestBackend {
        let events = Mailbox<BackendEvent>()
        let shared = Shared()
        var bootstrap = ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                shared.accepted.withLockedValue { $0.append(channel) }
                events.push(.accepted)
                return channel.eventLoop.makeCompletedFuture {
                    let handler: ChannelHandler
                    switch behavior {
                    case .echo: handler = EchoHandler(events: events)
                    case .sink(let keep, _): handler = SinkHandler(keepAtMost: keep, events: events)
                    case .source(let bytes): handler = SourceHandler(bytes: bytes, events: events)
                    case .flood(let total, let pattern): handler = FloodHandler(total: total, pattern: pattern, shared: shared, events: events)
                    case .reset(let greeting): handler = ResetHandler(greeting: greeting, events: events)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        switch behavior {
        case .sink(_, paused: true):
            // Inherited by accepted sockets: keep what the kernel buffers for a stalled backend small.
            bootstrap = bootstrap
                .serverChannelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
                .childChannelOption(.autoRead, value: false)
        default:
            break
        }
        let channel = try await bind(bootstrap)
        return TestBackend(serverChannel: channel, events: events, shared: shared)
    }

    /// A listener that never accepts, with its accept queue already full, so a connect to it hangs
    /// until the connector's timeout.
    struct Blackhole: Sendable {
        let listener: Channel
        let fillers: [Channel]

        var target: BackendTarget { .tcp(host: "127.0.0.1", port: self.listener.localAddress!.port!) }

        /// Closes the fillers and the listener, without waiting (for a `defer`).
        func close() {
            let (listener, fillers) = (self.listener, self.fillers)
            Task {
                for channel in fillers { try? await channel.close() }
                try? await listener.close()
            }
        }
    }

    static func blackhole() async throws -> Blackhole {
        let listener = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.backlog, value: 1)
            .serverChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        var fillers: [Channel] = []
        for _ in 0..<4 {
            let connect = ClientBootstrap(group: IntegrationLoops.group)
                .connectTimeout(.milliseconds(200))
                .connect(to: listener.localAddress!)
            if let channel = try? await connect.get() { fillers.append(channel) }
        }
        return Blackhole(listener: listener, fillers: fillers)
    }

    /// Waits for the next sink report, skipping other events.
    func nextSinkReport(timeout: Duration) async throws -> SinkReport {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { throw IntegrationTimeout(what: "the backend to see the connection end") }
            guard let event = try await self.events.next(timeout: left, what: "the backend to see the connection end") else {
                throw IntegrationTimeout(what: "a sink report (backend events finished)")
            }
            if case .sinkEnded(let report) = event { return report }
        }
    }

    /// Waits until the backend has accepted `count` connections in total.
    func waitForAccepted(_ count: Int, timeout: Duration = .seconds(5)) async -> Bool {
        await Relay.eventually(timeout: timeout) { self.accepted >= count }
    }

    func close() async {
        try? await self.serverChannel.close()
    }
}

// MARK: - Ports and addresses

enum FreePort {
    /// A TCP port on `host` that was free a moment ago (bound to port 0, then closed): nothing
    /// listens there (a backend that refuses), and Ferry's `--listen`, which takes no port 0, can
    /// be given it.
    static func on(_ host: String = "127.0.0.1") async throws -> Int {
        let channel = try await ServerBootstrap(group: IntegrationLoops.group).bind(host: host, port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    /// True if this machine has an IPv6 loopback address to bind to.
    static let hasIPv6Loopback: Bool = {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }()
}

/// Writes back everything it reads; at the peer's half-close (with `allowRemoteHalfClosure`) it ends
/// its side too. The one echo handler of the tests: test backends, TLS and extra listeners use it.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let events: Mailbox<BackendEvent>?

    /// - Parameter events: where `.closed` is reported when the connection ends, if anywhere.
    init(events: Mailbox<BackendEvent>? = nil) {
        self.events = events
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // Echo what is pending, then end our side too.
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.events?.push(.closed)
    }
}

private final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let keepAtMost: Int
    private let events: Mailbox<BackendEvent>
    private var report: SinkReport
    private var reported = false

    init(keepAtMost: Int, events: Mailbox<BackendEvent>) {
        self.keepAtMost = keepAtMost
        self.events = events
        self.report = SinkReport(byteCount: 0, kept: ByteBuffer(), sawEOF: false, error: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        self.report.byteCount += buffer.readableBytes
        let room = self.keepAtMost - self.report.kept.readableBytes
        if room > 0, var piece = buffer.readSlice(length: min(room, buffer.readableBytes)) {
            self.report.kept.writeBuffer(&piece)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            if self.report.error == nil { self.report.sawEOF = true }
            self.finish()
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if self.report.error == nil { self.report.error = "\(error)" }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish()
        self.events.push(.closed)
    }

    private func finish() {
        guard !self.reported else { return }
        self.reported = true
        self.events.push(.sinkEnded(self.report))
    }
}

private final class SourceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let bytes: ByteBuffer
    private let events: Mailbox<BackendEvent>

    init(bytes: ByteBuffer, events: Mailbox<BackendEvent>) {
        self.bytes = bytes
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(self.bytes)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.events.push(.closed)
    }
}

private final class FloodHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let chunk = 64 * 1024

    private let total: Int
    private let pattern: BytePattern
    private let shared: TestBackend.Shared
    private let events: Mailbox<BackendEvent>
    private var offset = 0

    init(total: Int, pattern: BytePattern, shared: TestBackend.Shared, events: Mailbox<BackendEvent>) {
        self.total = total
        self.pattern = pattern
        self.shared = shared
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        self.writeMore(context: context)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writeMore(context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// A write or flush can fire writability changes (and so re-enter here) before it returns.
    private var writing = false
    private var calledAgain = false

    private func writeMore(context: ChannelHandlerContext) {
        guard !self.writing else {
            self.calledAgain = true
            return
        }
        self.writing = true
        defer { self.writing = false }
        repeat {
            self.calledAgain = false
            while context.channel.isWritable && self.offset < self.total {
                let count = min(Self.chunk, self.total - self.offset)
                let chunk = self.pattern.buffer(at: self.offset, count: count)
                self.offset += count
                let promise = context.eventLoop.makePromise(of: Void.self)
                let shared = self.shared
                promise.futureResult.whenSuccess { shared.bytesWritten.withLockedValue { $0 += count } }
                context.write(Self.wrapOutboundOut(chunk), promise: promise)
            }
            context.flush()
        } while self.calledAgain && self.offset < self.total
        if self.offset >= self.total && !self.closing {
            self.closing = true
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    private var closing = false

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.events.push(.closed)
    }
}

private final class ResetHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let greeting: String
    private let events: Mailbox<BackendEvent>

    init(greeting: String, events: Mailbox<BackendEvent>) {
        self.greeting = greeting
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(channel.allocator.buffer(string: self.greeting)), promise: nil)
        channel.eventLoop.scheduleTask(in: .milliseconds(200)) {
            // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            guard let provider = channel as? SocketOptionProvider else {
                channel.close(promise: nil)
                return
            }
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.events.push(.closed)
    }
}
