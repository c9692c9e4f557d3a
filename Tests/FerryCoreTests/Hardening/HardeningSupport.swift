// Small raw-socket helpers for the hostile-client suite, on top of the shared plumbing in Support/
// (WSTestClient, TestBackend, Relay, RawClient, ChildProcess, FerryBinary): a ping flooder that
// writes from the event loop as fast as the connection takes bytes, the relay process's resident
// memory and signal dispositions from /proc, and a throw-away web root.

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
