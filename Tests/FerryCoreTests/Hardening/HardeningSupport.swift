// Small raw-socket helpers for the hostile-client suite, on top of the integration tests' plumbing
// (WSTestClient, TestBackend, Relay, ChildProcess, FerryExecutable): a ping flooder that writes from
// the event loop as fast as the connection takes bytes, a bare TCP client that can bind its source
// address, the relay process's resident memory and signal dispositions from /proc, a throw-away web
// root, and a `ferry` child process on a free port.

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The parent of every hostile-client suite: `swift test --filter Hardening` selects them all, and
/// they run one at a time (several measure time or memory).
@Suite("Hardening (hostile clients)", .serialized)
struct HardeningTests {}

// MARK: - Ping flood

/// How a ping flood ended.
struct PingFloodOutcome: Sendable, CustomStringConvertible {
    enum Reason: String, Sendable {
        /// The flood ran for its whole duration.
        case deadline
        /// It wrote its byte cap.
        case byteCap
        /// The connection closed (or a write failed) first.
        case closed
    }

    var reason: Reason
    /// Bytes of ping frames the kernel took.
    var bytesTaken: Int
    /// Milliseconds from the start of the flood to its end.
    var milliseconds: Int

    var description: String { "\(self.reason.rawValue) after \(self.milliseconds) ms, \(self.bytesTaken) bytes of pings sent" }
}

/// Writes masked ping frames from the event loop as fast as the connection takes them (driven by
/// writability, never waiting on a write), until `duration` passes, `maxBytes` are queued, or the
/// connection closes. Sits first in a client's pipeline; inbound events pass through.
final class PingFlooder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let batch: ByteBuffer
    private let duration: TimeAmount
    private let maxBytes: Int
    private let done: EventLoopPromise<PingFloodOutcome>
    private var started: NIODeadline = .now()
    private var timer: Scheduled<Void>?
    private var queued = 0
    private var taken = 0
    private var finished = false
    private var writing = false
    private var calledAgain = false

    /// `pingsPerWrite` frames of `payloadSize` bytes (masked, as a client must) make one write.
    init(payloadSize: Int, pingsPerWrite: Int, duration: TimeAmount, maxBytes: Int, done: EventLoopPromise<PingFloodOutcome>) {
        var batch = ByteBuffer()
        for index in 0..<pingsPerWrite {
            let payload = ByteBuffer(bytes: (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &+ index) })
            var frame = WSFrameEncoder.encode(opcode: WSFrame.ping, payload: payload, maskKey: [0x11, 0x22, 0x33, UInt8(truncatingIfNeeded: index)])
            batch.writeBuffer(&frame)
        }
        self.batch = batch
        self.duration = duration
        self.maxBytes = maxBytes
        self.done = done
    }

    /// Adds a flooder in front of `channel`'s handlers and starts it; the future tells how it ended.
    static func start(
        on channel: Channel,
        payloadSize: Int = 125,
        pingsPerWrite: Int = 64,
        duration: TimeAmount,
        maxBytes: Int
    ) async throws -> EventLoopFuture<PingFloodOutcome> {
        try await channel.eventLoop.submit {
            let done = channel.eventLoop.makePromise(of: PingFloodOutcome.self)
            let flooder = PingFlooder(payloadSize: payloadSize, pingsPerWrite: pingsPerWrite, duration: duration, maxBytes: maxBytes, done: done)
            try channel.pipeline.syncOperations.addHandler(flooder, position: .first)
            return done.futureResult
        }.get()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.started = .now()
        guard context.channel.isActive else {
            self.finish(.closed)
            return
        }
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.duration) { [self] in
            self.finish(.deadline)
        }
        self.writeMore(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish(.closed)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.writeMore(context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.finish(.closed)
        context.fireErrorCaught(error)
    }

    /// A write or flush can fire writability changes (and so re-enter here) before it returns.
    private func writeMore(context: ChannelHandlerContext) {
        guard !self.writing else {
            self.calledAgain = true
            return
        }
        self.writing = true
        defer { self.writing = false }
        repeat {
            self.calledAgain = false
            while !self.finished && context.channel.isWritable {
                if self.queued >= self.maxBytes {
                    self.finish(.byteCap)
                    break
                }
                let count = self.batch.readableBytes
                self.queued += count
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.assumeIsolated().whenComplete { result in
                    switch result {
                    case .success: self.taken += count
                    case .failure: self.finish(.closed)
                    }
                }
                context.write(Self.wrapOutboundOut(self.batch), promise: written)
            }
            context.flush()
        } while self.calledAgain && !self.finished
    }

    private func finish(_ reason: PingFloodOutcome.Reason) {
        guard !self.finished else { return }
        self.finished = true
        self.timer?.cancel()
        let elapsed = Int((NIODeadline.now() - self.started).nanoseconds / 1_000_000)
        self.done.succeed(PingFloodOutcome(reason: reason, bytesTaken: self.taken, milliseconds: elapsed))
    }
}

@available(*, unavailable)
extension PingFlooder: Sendable {}

/// Masked ping frames written back to back, payload `i` being `i` as a big-endian UInt32.
enum PingBurst {
    static func frames(count: Int) -> ByteBuffer {
        var burst = ByteBuffer()
        for index in 0..<count {
            var frame = WSFrameEncoder.encode(opcode: WSFrame.ping, payload: Self.payload(index), maskKey: [0xA1, 0xB2, 0xC3, 0xD4])
            burst.writeBuffer(&frame)
        }
        return burst
    }

    static func payload(_ index: Int) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(UInt32(index))
        return payload
    }
}

// MARK: - A bare TCP client

/// A TCP connection that keeps what it receives and notices when the server closes; it can bind its
/// source address (`127.0.0.2`, say) before connecting, which WSTestClient cannot.
final class RawClient: Sendable {
    let channel: Channel
    private let state: State

    fileprivate final class State: Sendable {
        let received = NIOLockedValueBox<[UInt8]>([])
        let closed = NIOLockedValueBox(false)
    }

    private init(channel: Channel, state: State) {
        self.channel = channel
        self.state = state
    }

    /// - Parameters:
    ///   - source: the local address to bind before connecting.
    ///   - receiveBufferSize: SO_RCVBUF, set before connecting (so the window stays small).
    ///   - maxSegmentSize: TCP_MAXSEG, set before connecting, so the SYN announces it and the server
    ///     sends segments no bigger (which also keeps the server's send buffer from growing large).
    static func connect(
        to address: SocketAddress,
        from source: SocketAddress? = nil,
        receiveBufferSize: Int? = nil,
        maxSegmentSize: Int? = nil
    ) async throws -> RawClient {
        let state = State()
        var bootstrap = ClientBootstrap(group: IntegrationLoops.group)
            .connectTimeout(.seconds(2))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawClientHandler(state: state))
                }
            }
        if let source { bootstrap = bootstrap.bind(to: source) }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        if let maxSegmentSize {
            bootstrap = bootstrap.channelOption(.tcpOption(NIOBSDSocket.Option(rawValue: TCP_MAXSEG)), value: SocketOptionValue(maxSegmentSize))
        }
        let channel = try await bootstrap.connect(to: address).get()
        return RawClient(channel: channel, state: state)
    }

    var received: [UInt8] { self.state.received.withLockedValue { $0 } }
    var receivedText: String { String(decoding: self.received, as: UTF8.self) }
    /// True once the server closed (EOF, reset) or the client did.
    var isClosed: Bool { self.state.closed.withLockedValue { $0 } }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// The status code of the response head, once the head has arrived (nil if it did not in time).
    func responseStatus(timeout: Duration) async -> Int? {
        _ = await Relay.eventually(timeout: timeout) { self.receivedText.contains("\r\n\r\n") || self.isClosed }
        let text = self.receivedText
        guard let line = text.split(separator: "\r\n", maxSplits: 1).first else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
        return Int(parts[1])
    }

    /// Stops reading from the socket: what the server sends piles up in the kernel, then in the server.
    func stopReading() async throws {
        try await self.channel.setOption(.autoRead, value: false).get()
    }

    func close() async {
        try? await self.channel.close()
    }
}

private final class RawClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let state: RawClient.State

    init(state: RawClient.State) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.state.received.withLockedValue { $0 += buffer.readableBytesView }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state.closed.withLockedValue { $0 = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

extension WSTestClient {
    /// Writes `bytes` and shuts the write side down (a TCP FIN) in the same event-loop turn, so the
    /// server cannot answer and close the connection in between. NIO sends the FIN after the bytes.
    func sendThenHalfClose(_ bytes: [UInt8]) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            return channel.close(mode: .output)
        }.get()
    }
}

/// A hand-written upgrade request with a fixed, valid key; `headers` are written as given (so a
/// test can leave `Host` out or repeat it).
enum RawUpgrade {
    /// `Sec-WebSocket-Accept` for the fixed key (RFC 6455's own example).
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    static func request(path: String = "/", headers: [(String, String)]) -> String {
        var text = "GET \(path) HTTP/1.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        return text
    }
}

// MARK: - The relay process, from /proc

enum ProcFS {
    /// A `Name:` line of /proc/PID/status, its first value.
    private static func statusField(_ name: String, pid: pid_t) -> Substring? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
        }
        return nil
    }

    /// Resident memory (VmRSS) in bytes; nil if the process is gone.
    static func residentBytes(pid: pid_t) -> Int? {
        guard let field = self.statusField("VmRSS", pid: pid), let kib = Int(field) else { return nil }
        return kib * 1024
    }

    /// True if the process ignores or catches `signal` (its default action no longer applies).
    static func handlesSignal(_ signal: Int32, pid: pid_t) -> Bool {
        let bit = UInt64(1) << UInt64(signal - 1)
        for name in ["SigIgn", "SigCgt"] {
            if let field = self.statusField(name, pid: pid), let mask = UInt64(field, radix: 16), mask & bit != 0 {
                return true
            }
        }
        return false
    }
}

// MARK: - The ferry executable

enum FerryBinary {
    /// Starts `ferry --listen 127.0.0.1:PORT` plus `arguments` (a free port picked here) with its
    /// output in a log file in `directory`; returns the process and the port. Does not wait.
    static func spawn(_ executable: String, arguments: [String], directory: String) async throws -> (ChildProcess, Int) {
        let port = try await TestBackend.refusingPort()
        let process = try ChildProcess(
            executable: executable,
            arguments: ["--listen", "127.0.0.1:\(port)"] + arguments,
            logPath: "\(directory)/ferry.log"
        )
        return (process, port)
    }

    /// Runs `body` with the `ferry` binary relaying `/` to an echo backend on a free port (started,
    /// not yet waited for), its files in a fresh folder `name`; stops it (SIGINT) whatever happens.
    static func withEchoRelay<T>(_ name: String, _ body: (ChildProcess, Int) async throws -> T) async throws -> T {
        let executable = try #require(FerryExecutable.path)
        let directory = try TLSFiles.makeDirectory(name)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backend = try await TestBackend.start(.echo)
        defer { Task { await backend.close() } }
        let (ferry, port) = try await Self.spawn(executable, arguments: ["--route", "/=127.0.0.1:\(backend.address.port!)"], directory: directory)
        do {
            let result = try await body(ferry, port)
            await ferry.stop(signal: SIGINT, grace: .seconds(3))
            return result
        } catch {
            await ferry.stop(signal: SIGINT, grace: .seconds(3))
            throw error
        }
    }

    /// Waits (bounded) for the `listening address=127.0.0.1:PORT` line.
    static func waitForListening(_ process: ChildProcess, port: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await process.waitForOutput(timeout: timeout) { TLSTests.Reload.listeningPort(in: $0) } == port
    }

    /// How a child process ended, for failure messages.
    static func exitDescription(_ process: ChildProcess) -> String {
        if process.isRunning { return "still running" }
        switch process.process.terminationReason {
        case .uncaughtSignal: return "killed by signal \(process.process.terminationStatus)"
        default: return "exited with status \(process.process.terminationStatus)"
        }
    }

    /// Opens a WebSocket session on a relay that is not in this process (no `RunningRelay`).
    static func upgrade(_ address: SocketAddress, path: String = "/", autoPong: Bool = true, receiveBufferSize: Int? = nil) async throws -> WSTestClient {
        let client = try await WSTestClient.open(to: address, autoPong: autoPong, receiveBufferSize: receiveBufferSize)
        do {
            try await client.sendHandshake(path: path, host: "127.0.0.1:\(address.port ?? 0)")
            _ = try await client.readResponse(timeout: .seconds(5))
            try client.checkUpgraded()
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

// MARK: - Web roots

/// A throw-away `--web` folder: `index.html`, `app/index.html`, and `escape`, a symbolic link to a
/// folder outside the root (with its own `index.html`).
struct WebRoot {
    let base: String
    var root: String { "\(self.base)/root" }
    var outside: String { "\(self.base)/outside" }

    static func make() throws -> WebRoot {
        let base = try TLSFiles.makeDirectory("hardening-web")
        let web = WebRoot(base: base)
        let files = FileManager.default
        try files.createDirectory(atPath: "\(web.root)/app", withIntermediateDirectories: true)
        try files.createDirectory(atPath: web.outside, withIntermediateDirectories: true)
        try Data("<!doctype html><title>root</title>\n".utf8).write(to: URL(fileURLWithPath: "\(web.root)/index.html"))
        try Data("<!doctype html><title>app</title>\n".utf8).write(to: URL(fileURLWithPath: "\(web.root)/app/index.html"))
        try Data("<!doctype html><title>secret</title>\n".utf8).write(to: URL(fileURLWithPath: "\(web.outside)/index.html"))
        try files.createSymbolicLink(atPath: "\(web.root)/escape", withDestinationPath: web.outside)
        return web
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.base)
    }
}

enum HardeningRelay {
    /// A relay serving `web` as static files (and `routes`), started and always stopped.
    static func withWeb<T: Sendable>(
        _ web: WebRoot,
        routes: [Route] = [Route(path: "/ws", target: .tcp(host: "127.0.0.1", port: 9))],
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: routes,
            limits: Relay.testLimits(),
            web: WebOptions(root: web.root)
        )
        let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
        return try await Relay.serving(server, body)
    }

    /// Milliseconds since `start`.
    static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        ProductionClock.milliseconds(since: start)
    }
}
