// Plumbing every real-socket suite shares: a mailbox with timeouts, a deterministic byte pattern,
// and a relay that is started on an ephemeral port and always stopped (plain, or with the
// load-balancer options), and a millisecond clock for timing assertions.

import Logging
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

/// A wait that ran out of time, naming what was awaited.
struct IntegrationTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// The event loops every integration test uses (the process-wide singleton; never shut down).
enum IntegrationLoops {
    static var group: MultiThreadedEventLoopGroup { MultiThreadedEventLoopGroup.singleton }
}

/// A multi-producer, single-consumer queue whose `next` always has a deadline.
///
/// Producers (channel handlers on event loops) `push`; the consumer (a test task) awaits `next`. When
/// the deadline passes first, `next` throws ``IntegrationTimeout``, so no test can hang on it.
final class Mailbox<Element: Sendable>: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Element?, any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var items = CircularBuffer<Element>()
        var finished = false
        var waiter: Waiter?
        var nextID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Queues an element, or hands it straight to a waiting consumer. Ignored after ``finish()``.
    func push(_ element: Element) {
        let waiter: Waiter? = self.state.withLockedValue { state in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.items.append(element)
            return nil
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: element)
        }
    }

    /// No more elements will come; a waiting or later consumer gets `nil` once the queue is drained.
    func finish() {
        let waiter: Waiter? = self.state.withLockedValue { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.items.isEmpty ? state.waiter : nil
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: nil)
        }
    }

    /// Elements queued and not yet taken.
    var queuedCount: Int { self.state.withLockedValue { $0.items.count } }

    /// The next element, `nil` once finished and drained; throws ``IntegrationTimeout`` after `timeout`.
    func next(timeout: Duration, what: @autoclosure () -> String = "the next event") async throws -> Element? {
        let description = what()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Element?, any Error>) in
            let action: MailboxAction<Element> = self.state.withLockedValue { state in
                if let first = state.items.popFirst() { return .resume(first) }
                if state.finished { return .resume(nil) }
                precondition(state.waiter == nil, "Mailbox has one consumer at a time")
                state.nextID += 1
                state.waiter = Waiter(id: state.nextID, continuation: continuation, timer: nil)
                return .wait(state.nextID)
            }
            switch action {
            case .resume(let element):
                continuation.resume(returning: element)
            case .wait(let id):
                let timer = IntegrationLoops.group.any().scheduleTask(in: TimeAmount(timeout)) {
                    self.expire(id: id, what: description)
                }
                let alreadyResumed = self.state.withLockedValue { state in
                    guard state.waiter?.id == id else { return true }
                    state.waiter?.timer = timer
                    return false
                }
                if alreadyResumed { timer.cancel() }
            }
        }
    }

    private func expire(id: UInt64, what: String) {
        let waiter: Waiter? = self.state.withLockedValue { state in
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.continuation.resume(throwing: IntegrationTimeout(what: what))
    }
}

private enum MailboxAction<Element> {
    case resume(Element?)
    case wait(UInt64)
}

/// A deterministic, position-addressable byte pattern: byte `i` of stream `seed` is always the same,
/// so any slice can be checked wherever frame or read boundaries fall, and a swapped, dropped or
/// repeated chunk is caught (every 8-byte word differs).
struct BytePattern: Sendable {
    var seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
    }

    private static func word(_ x: UInt64) -> UInt64 {
        // splitmix64
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The `count` bytes starting at stream offset `offset`.
    func bytes(at offset: Int, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        let firstWord = offset / 8
        let lastWord = (offset + count - 1) / 8
        var words = [UInt64](repeating: 0, count: lastWord - firstWord + 1)
        for index in 0..<words.count {
            words[index] = Self.word(self.seed &* 0x1_0000_0001 &+ UInt64(firstWord + index)).littleEndian
        }
        return words.withUnsafeBytes { raw in
            Array(raw[(offset - firstWord * 8)..<(offset - firstWord * 8 + count)])
        }
    }

    func buffer(at offset: Int, count: Int) -> ByteBuffer {
        ByteBuffer(bytes: self.bytes(at: offset, count: count))
    }

    /// True if `buffer`'s readable bytes equal the pattern from `offset` on.
    func matches(_ buffer: ByteBuffer, at offset: Int) -> Bool {
        let expected = self.bytes(at: offset, count: buffer.readableBytes)
        return buffer.withUnsafeReadableBytes { actual in
            expected.withUnsafeBytes { expected in
                actual.count == expected.count && (actual.count == 0 || memcmp(actual.baseAddress!, expected.baseAddress!, actual.count) == 0)
            }
        }
    }
}

/// A relay started on an ephemeral port for one test.
struct RunningRelay: Sendable {
    let server: FerryServer
    let addresses: [SocketAddress]
    var address: SocketAddress { self.addresses[0] }
    /// A `Host` header value for the listen address.
    var hostHeader: String {
        switch self.address {
        case .v6: return "[\(self.address.ipAddress ?? "::1")]:\(self.address.port ?? 0)"
        default: return "\(self.address.ipAddress ?? "127.0.0.1"):\(self.address.port ?? 0)"
        }
    }
}

enum Relay {
    static let logger = Logger(label: "ferry.integration-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Limits for tests: everything as shipped except keepalive pings, which are off unless a test wants them.
    static func testLimits(_ adjust: (inout Limits) -> Void = { _ in }) -> Limits {
        var limits = Limits()
        limits.pingInterval = .zero
        limits.closeTimeout = .seconds(2)
        adjust(&limits)
        return limits
    }

    /// Starts a relay, runs `body`, and stops the relay whatever `body` does.
    static func with<T: Sendable>(
        routes: [Route],
        limits: Limits = Relay.testLimits(),
        originPolicy: OriginPolicy = OriginPolicy(),
        listeners: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 0)],
        staticPages: [String: StaticPage] = [:],
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let configuration = try FerryConfiguration(
            listeners: listeners,
            routes: routes,
            originPolicy: originPolicy,
            limits: limits,
            staticPages: staticPages
        )
        let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Self.logger)
        return try await Relay.serving(server, body)
    }

    /// Starts `server`, runs `body`, and stops the server whatever `body` does (waiting up to
    /// `stopTimeout` for sessions to end).
    static func serving<T: Sendable>(
        _ server: FerryServer,
        stopTimeout: TimeAmount = .seconds(3),
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let relay = RunningRelay(server: server, addresses: try await server.start())
        do {
            let result = try await body(relay)
            await server.stop(timeout: stopTimeout)
            return result
        } catch {
            await server.stop(timeout: stopTimeout)
            throw error
        }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
    static func eventually(timeout: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}

/// A relay with the load-balancer options (trusted proxies, PROXY listeners, an admin port).
enum ProductionRelay {
    /// Starts a relay on 127.0.0.1 (ephemeral port) with the given production options, runs `body`,
    /// and always stops it.
    static func with<T: Sendable>(
        routes: [Route],
        listeners: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 0)],
        trustedProxies: [String] = [],
        adminListen: ListenAddress? = nil,
        originPolicy: OriginPolicy = OriginPolicy(),
        limits: Limits = Relay.testLimits(),
        logger: Logger = Relay.logger,
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let server = try self.server(
            routes: routes,
            listeners: listeners,
            trustedProxies: trustedProxies,
            adminListen: adminListen,
            originPolicy: originPolicy,
            limits: limits,
            logger: logger
        )
        return try await Relay.serving(server, body)
    }

    /// A server built from the options, not started.
    static func server(
        routes: [Route],
        listeners: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 0)],
        trustedProxies: [String] = [],
        adminListen: ListenAddress? = nil,
        originPolicy: OriginPolicy = OriginPolicy(),
        limits: Limits = Relay.testLimits(),
        logger: Logger = Relay.logger
    ) throws -> FerryServer {
        let blocks = try trustedProxies.map { text in
            guard let block = AddressBlock(text) else { throw ProductionTestError(what: "bad address block \(text)") }
            return block
        }
        let configuration = try FerryConfiguration(
            listeners: listeners,
            routes: routes,
            originPolicy: originPolicy,
            limits: limits,
            trustedProxies: blocks,
            adminListen: adminListen
        )
        return try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: logger)
    }
}

struct ProductionTestError: Error, CustomStringConvertible {
    var what: String
    var description: String { self.what }
}

/// Elapsed time in whole milliseconds, for timing assertions.
enum ProductionClock {
    static let clock = ContinuousClock()

    static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        let elapsed = start.duration(to: self.clock.now)
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }
}
