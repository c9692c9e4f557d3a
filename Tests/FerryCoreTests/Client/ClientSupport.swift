// Plumbing for the client-end (`ferry connect`) tests: the parent suite, a local TCP or Unix
// client that keeps what it receives, `ferry connect --listen` run in-process against a relay, the
// `ferry` executable in stdio mode with pipes, and a scripted WebSocket server that answers the
// upgrade as a test needs (a refusal, a close code, a wrong accept key).

import Foundation
import Logging
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

/// The parent of every client-end suite: `swift test --filter Client` selects them all, one at a time
/// (they bind many sockets and spawn processes). It runs inside the integration parent, not beside
/// it: its 64 MiB transfers next to the timing tests there pushed a 600 ms timeout past 2 s.
extension IntegrationTests {
    @Suite("Client end (ferry connect)", .serialized)
    struct ClientTests {}
}

typealias ClientTests = IntegrationTests.ClientTests

// MARK: - In-process ferry connect

enum ClientRun {
    /// Silent, unless FERRY_TEST_CLIENT_LOG is set (then on standard error).
    static let logger = Logger(label: "ferry.client-tests", factory: { label -> any LogHandler in
        if ProcessInfo.processInfo.environment["FERRY_TEST_CLIENT_LOG"] == nil { return SwiftLogNoOpLogHandler() }
        return StreamLogHandler.standardError(label: label)
    })

    /// A configuration for `url` with test timers: pings off unless a test wants them.
    static func configuration(_ url: String, _ adjust: (inout ConnectConfiguration) throws -> Void = { _ in }) throws -> ConnectConfiguration {
        var configuration = ConnectConfiguration(url: try WebSocketURL.parse(url), listeners: [ListenAddress(host: "127.0.0.1", port: 0)])
        configuration.pingInterval = .zero
        configuration.closeTimeout = .seconds(2)
        configuration.connectTimeout = .seconds(5)
        try adjust(&configuration)
        return configuration
    }

    /// Runs `ferry connect --listen` in this process with `configuration`, runs `body` with its
    /// addresses, and always stops it.
    static func listening<T>(_ configuration: ConnectConfiguration, _ body: (ConnectListener, [SocketAddress]) async throws -> T) async throws -> T {
        let dialer = try WebSocketDialer(configuration: configuration)
        let (listener, addresses) = try await ConnectListener.start(dialer: dialer, group: IntegrationLoops.group, logger: Self.logger)
        do {
            let result = try await body(listener, addresses)
            await listener.stop()
            return result
        } catch {
            await listener.stop()
            throw error
        }
    }

    /// The URL of a relay started in this process.
    static func url(_ relay: RunningRelay, path: String = "/", secure: Bool = false) -> String {
        "\(secure ? "wss" : "ws")://127.0.0.1:\(relay.address.port!)\(path)"
    }
}

// MARK: - Local clients

/// A local TCP or Unix-socket connection to `ferry connect --listen`: sends, keeps every byte it
/// receives, and notes the peer's EOF and the connection's end.
final class LocalTestClient: Sendable {
    let channel: Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var received = ByteBuffer()
        var sawEOF = false
        var closed = false
    }

    private init(channel: Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// - Parameter paused: read nothing (with a small receive buffer) until ``resumeReading()``, to
    ///   stall what `ferry connect` writes to it.
    /// - Parameter sendBufferSize: a small kernel send buffer, so a stalled peer soon stalls `send`.
    static func connect(to address: SocketAddress, paused: Bool = false, sendBufferSize: Int? = nil) async throws -> LocalTestClient {
        let state = NIOLockedValueBox(State())
        var bootstrap = ClientBootstrap(group: IntegrationLoops.group)
        if paused {
            bootstrap = bootstrap.channelOption(.autoRead, value: false).channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
        }
        if let sendBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferSize))
        }
        let channel = try await bootstrap
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(state: state)) }
            }
            .connect(to: address).get()
        return LocalTestClient(channel: channel, state: state)
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(buffer)
    }

    func resumeReading() async throws {
        try await self.channel.setOption(.autoRead, value: true).get()
    }

    /// Half-closes: the local program has nothing more to send.
    func finishSending() async throws {
        try await self.channel.close(mode: .output)
    }

    var receivedCount: Int { self.state.withLockedValue { $0.received.readableBytes } }
    var received: ByteBuffer { self.state.withLockedValue { $0.received } }
    var sawEOF: Bool { self.state.withLockedValue { $0.sawEOF } }
    var isClosed: Bool { self.state.withLockedValue { $0.closed } }

    /// Waits until `count` bytes are in; returns them (and any more).
    func receive(count: Int, timeout: Duration = .seconds(20)) async throws -> ByteBuffer {
        guard await Relay.eventually(timeout: timeout, { self.receivedCount >= count || self.isClosed }) else {
            throw IntegrationTimeout(what: "\(count) bytes (have \(self.receivedCount))")
        }
        return self.received
    }

    /// Waits for the peer's EOF or the connection's end.
    func waitForEnd(timeout: Duration = .seconds(10)) async -> Bool {
        await Relay.eventually(timeout: timeout) { self.sawEOF || self.isClosed }
    }

    func close() async {
        try? await self.channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<State>

        init(state: NIOLockedValueBox<State>) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = Self.unwrapInboundIn(data)
            self.state.withLockedValue { _ = $0.received.writeBuffer(&bytes) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event {
                self.state.withLockedValue { $0.sawEOF = true }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
        }
    }
}

// MARK: - ferry connect in stdio mode

/// `ferry connect ARGUMENTS` run as a child process with pipes on standard input and output; what it
/// writes is read as it comes, standard error goes to a file.
final class StdioConnect: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errorPath: String
    private let received = NIOLockedValueBox(State())

    struct State {
        var bytes: [UInt8] = []
        var ended = false
    }

    /// The proxy variables `ferry connect` reads: left out of a child's environment unless a test
    /// sets them, so a developer's proxy does not carry the tests' loopback sessions.
    static let proxyVariables = ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"]

    /// - Parameter environment: variables set for the child, over this process's (without the proxy ones).
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        // A write to a pipe whose reader has exited must fail, not end the test process.
        signal(SIGPIPE, SIG_IGN)
        let executable = try #require(FerryExecutable.path, "the ferry executable is built with the tests")
        self.errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-connect-\(UUID().uuidString).err").path
        _ = FileManager.default.createFile(atPath: self.errorPath, contents: nil)
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = ["connect"] + arguments
        var childEnvironment = ProcessInfo.processInfo.environment
        for name in Self.proxyVariables { childEnvironment[name] = nil }
        childEnvironment.merge(environment) { _, given in given }
        self.process.environment = childEnvironment
        self.process.standardInput = self.input
        self.process.standardOutput = self.output
        self.process.standardError = FileHandle(forWritingAtPath: self.errorPath)
        try self.process.run()
        let reader = self.output.fileHandleForReading
        let received = self.received
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                received.withLockedValue { $0.bytes.append(contentsOf: data) }
            }
            received.withLockedValue { $0.ended = true }
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.errorPath)
    }

    /// Writes on a background thread (a pipe holds 64 KiB; the child reads as it relays).
    func send(_ bytes: [UInt8]) async throws {
        let handle = self.input.fileHandleForWriting
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            Thread.detachNewThread {
                do {
                    try handle.write(contentsOf: Data(bytes))
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func closeInput() throws {
        try self.input.fileHandleForWriting.close()
    }

    var receivedBytes: [UInt8] { self.received.withLockedValue { $0.bytes } }
    var outputEnded: Bool { self.received.withLockedValue { $0.ended } }
    var errorOutput: String { (try? String(contentsOfFile: self.errorPath, encoding: .utf8)) ?? "" }

    func receive(count: Int, timeout: Duration = .seconds(20)) async throws -> [UInt8] {
        guard await Relay.eventually(timeout: timeout, { self.receivedBytes.count >= count || self.outputEnded }) else {
            throw IntegrationTimeout(what: "\(count) bytes on standard output (have \(self.receivedBytes.count))")
        }
        return self.receivedBytes
    }

    /// The exit status, or nil if still running at the deadline (then it is killed).
    func waitForExit(timeout: Duration = .seconds(15)) async -> Int32? {
        let exited = await Relay.eventually(timeout: timeout) { !self.process.isRunning }
        guard exited else {
            kill(self.process.processIdentifier, SIGKILL)
            return nil
        }
        return self.process.terminationStatus
    }
}

// MARK: - A scripted WebSocket server

/// A server that reads one upgrade request per connection and answers as told; every request head it
/// read is kept, so a test can check what `ferry connect` sent.
final class ScriptedWebSocketServer: Sendable {
    enum Answer: Sendable {
        /// An HTTP answer other than 101, with this body.
        case refuse(statusLine: String, body: String)
        /// A correct 101, then a close frame with this code and reason; hangs up once the client's
        /// close arrives.
        case upgradeThenClose(code: UInt16, reason: String)
        /// A 101 whose Sec-WebSocket-Accept is wrong.
        case wrongAccept
        /// A correct 101, then a masked binary frame (servers must not mask).
        case upgradeThenMaskedFrame
        /// A correct 101, then nothing: pings and closes go unanswered.
        case upgradeThenSilence
        /// No answer: the connection is reset (RST) once the request is in, as websockify
        /// `--ssl-only` does to a ws:// request.
        case resetOnRequest
    }

    let channel: Channel
    let requests: Mailbox<String>

    private init(channel: Channel, requests: Mailbox<String>) {
        self.channel = channel
        self.requests = requests
    }

    var port: Int { self.channel.localAddress!.port! }
    var url: String { "ws://127.0.0.1:\(self.port)/scripted" }

    static func start(_ answer: Answer) async throws -> ScriptedWebSocketServer {
        let requests = Mailbox<String>()
        let channel = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(answer: answer, requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedWebSocketServer(channel: channel, requests: requests)
    }

    func close() async {
        try? await self.channel.close()
    }

    /// An unmasked (server) frame.
    static func frame(opcode: UInt8, payload: [UInt8], maskKey: [UInt8]? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0x80 | opcode))
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        if payload.count < 126 {
            buffer.writeInteger(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        if let maskKey {
            buffer.writeBytes(maskKey)
            buffer.writeBytes(payload.enumerated().map { $0.element ^ maskKey[$0.offset % 4] })
        } else {
            buffer.writeBytes(payload)
        }
        return buffer
    }

    static func closeFrame(code: UInt16, reason: String) -> ByteBuffer {
        Self.frame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    private final class ScriptedHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let answer: Answer
        let requests: Mailbox<String>
        var head = ""
        var answered = false

        init(answer: Answer, requests: Mailbox<String>) {
            self.answer = answer
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Self.unwrapInboundIn(data)
            guard !self.answered else {
                // The client's close (or anything after the 101): the server hangs up first.
                if case .upgradeThenSilence = self.answer { return }
                context.close(promise: nil)
                return
            }
            self.head += String(buffer: bytes)
            guard let end = self.head.range(of: "\r\n\r\n") else { return }
            self.answered = true
            let request = String(self.head[..<end.lowerBound])
            self.requests.push(request)
            if case .resetOnRequest = self.answer {
                // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                let channel = context.channel
                guard let provider = channel as? SocketOptionProvider else {
                    channel.close(promise: nil)
                    return
                }
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            let key = request.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }
                .map { String($0.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces)) } ?? ""
            var reply = ByteBuffer()
            switch self.answer {
            case .refuse(let statusLine, let body):
                reply.writeString("HTTP/1.1 \(statusLine)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
                context.writeAndFlush(Self.wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            case .wrongAccept:
                reply.writeString(Self.switching(accept: "d3Jvbmcgd3Jvbmcgd3Jvbmc="))
            case .upgradeThenClose(let code, let reason):
                reply.writeString(Self.switching(accept: WebSocketAccept.value(forKey: key)))
                var close = ScriptedWebSocketServer.closeFrame(code: code, reason: reason)
                reply.writeBuffer(&close)
            case .upgradeThenSilence:
                reply.writeString(Self.switching(accept: WebSocketAccept.value(forKey: key)))
            case .resetOnRequest:
                return
            case .upgradeThenMaskedFrame:
                reply.writeString(Self.switching(accept: WebSocketAccept.value(forKey: key)))
                var frame = ScriptedWebSocketServer.frame(opcode: 0x2, payload: Array("masked".utf8), maskKey: [1, 2, 3, 4])
                reply.writeBuffer(&frame)
            }
            context.writeAndFlush(Self.wrapOutboundOut(reply), promise: nil)
        }

        static func switching(accept: String) -> String {
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}
