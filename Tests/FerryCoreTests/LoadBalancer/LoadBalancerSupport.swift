// Plumbing for the "behind a load balancer" tests: PROXY header parsing outcomes; a backend that
// records the bytes it receives; and a seeded random number generator for the fuzz loops. The relay with trusted proxies, PROXY listeners and an admin port
// (`ProductionRelay`), plain HTTP GETs (`PlainHTTP`) and hand-built PROXY headers (`PROXYBytes`) are
// in Support/.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

// MARK: - Raw connections

extension WSTestClient {
    /// Opens a raw connection to the relay, sends `prefix` (a PROXY header, say), then the upgrade
    /// request, and reads the response. `splitPrefixAt` sends the prefix in two writes, apart.
    static func proxied(
        _ relay: RunningRelay,
        prefix: [UInt8],
        path: String = "/",
        headers: [(String, String)] = [],
        splitPrefixAt: Int? = nil
    ) async throws -> WSTestClient {
        let client = try await WSTestClient.open(to: relay.address)
        do {
            if let split = splitPrefixAt, split > 0, split < prefix.count {
                try await client.sendRaw(Array(prefix[..<split]))
                try await Task.sleep(for: .milliseconds(30))
                try await client.sendRaw(Array(prefix[split...]))
            } else {
                try await client.sendRaw(prefix)
            }
            try await client.sendHandshake(path: path, host: relay.hostHeader, headers: headers)
            _ = try await client.readResponse(timeout: .seconds(5))
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Sends `bytes` (the server may already have closed: write errors are ignored) and waits for the
    /// server to close. Returns the response if the server wrote one (nil: closed without a word).
    static func sendAndAwaitClose(_ relay: RunningRelay, bytes: [UInt8], timeout: Duration = .seconds(5)) async throws -> HTTPTestResponse? {
        let client = try await WSTestClient.open(to: relay.address)
        do {
            try? await client.sendRaw(bytes)
            _ = try await client.waitForDisconnect(timeout: timeout)
            let response = client.receivedResponse
            await client.shutdown()
            return response
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// What parsing some bytes gave, in a form tests can compare.
enum ParseOutcome: Equatable, CustomStringConvertible {
    case needsMore
    case parsed(ProxyHeader, Int)
    case failed(String)

    init(_ bytes: [UInt8]) {
        do {
            if let (header, length) = try ProxyHeaderParser.parse(bytes) {
                self = .parsed(header, length)
            } else {
                self = .needsMore
            }
        } catch {
            self = .failed(error.reason)
        }
    }

    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }

    var description: String {
        switch self {
        case .needsMore: return "needs more"
        case .parsed(let header, let length): return "parsed \(header) (\(length) bytes)"
        case .failed(let reason): return "failed: \(reason)"
        }
    }
}

/// Splits a stream the way `ProxyProtocolDecoder` sees it: the bytes arrive in `chunks`, and after
/// each one the parser is asked about everything so far; the first answer that is not "needs more"
/// is the outcome.
func streamingOutcome(_ bytes: [UInt8], chunkSizes: [Int]) -> ParseOutcome {
    var seen = 0
    var index = 0
    while seen < bytes.count {
        let size = max(1, chunkSizes.isEmpty ? bytes.count : chunkSizes[index % chunkSizes.count])
        index += 1
        seen = min(bytes.count, seen + size)
        let outcome = ParseOutcome(Array(bytes[..<seen]))
        if outcome != .needsMore { return outcome }
    }
    return .needsMore
}

// MARK: - A backend that records what it receives

/// A TCP backend that keeps every byte it receives, per connection, and answers nothing.
final class RecordingBackend: Sendable {
    let serverChannel: Channel
    private let received = NIOLockedValueBox<[[UInt8]]>([])
    private let children = NIOLockedValueBox<[Channel]>([])
    private let closedCount = NIOLockedValueBox(0)

    /// Connections that have ended (closed by either side).
    var closedConnections: Int { self.closedCount.withLockedValue { $0 } }

    fileprivate func connectionClosed() {
        self.closedCount.withLockedValue { $0 += 1 }
    }

    private init(serverChannel: Channel) {
        self.serverChannel = serverChannel
    }

    static func start() async throws -> RecordingBackend {
        let box = NIOLockedValueBox<RecordingBackend?>(nil)
        let channel = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let backend = box.withLockedValue({ $0 }) else { throw ProductionTestError(what: "backend not ready") }
                    let index = backend.connectionOpened(channel)
                    try channel.pipeline.syncOperations.addHandler(RecordingHandler(backend: backend, index: index))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let backend = RecordingBackend(serverChannel: channel)
        box.withLockedValue { $0 = backend }
        return backend
    }

    var port: Int { self.serverChannel.localAddress?.port ?? 0 }

    fileprivate func connectionOpened(_ channel: Channel) -> Int {
        self.children.withLockedValue { $0.append(channel) }
        return self.received.withLockedValue { received in
            received.append([])
            return received.count - 1
        }
    }

    fileprivate func record(_ bytes: [UInt8], index: Int) {
        self.received.withLockedValue { $0[index] += bytes }
    }

    /// What connection `index` has received so far (empty if it does not exist yet).
    func bytes(connection index: Int = 0) -> [UInt8] {
        self.received.withLockedValue { $0.indices.contains(index) ? $0[index] : [] }
    }

    /// Waits until connection `index` has received at least `count` bytes; returns them (or what came).
    func waitForBytes(_ count: Int, connection index: Int = 0, timeout: Duration = .seconds(5)) async -> [UInt8] {
        _ = await Relay.eventually(timeout: timeout) { self.bytes(connection: index).count >= count }
        return self.bytes(connection: index)
    }

    /// Waits until connection `index` has received a whole PROXY header (or bytes that cannot be
    /// one); returns what it received and what the parser makes of it.
    func waitForProxyHeader(connection index: Int = 0, timeout: Duration = .seconds(5)) async -> ([UInt8], ParseOutcome) {
        _ = await Relay.eventually(timeout: timeout) { ParseOutcome(self.bytes(connection: index)) != .needsMore }
        let bytes = self.bytes(connection: index)
        return (bytes, ParseOutcome(bytes))
    }

    func close() async {
        for channel in self.children.withLockedValue({ $0 }) { try? await channel.close() }
        try? await self.serverChannel.close()
    }
}

private final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let backend: RecordingBackend
    private let index: Int

    init(backend: RecordingBackend, index: Int) {
        self.backend = backend
        self.index = index
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        self.backend.record(buffer.readBytes(length: buffer.readableBytes) ?? [], index: self.index)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.backend.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

// MARK: - Logs

extension AuthLogCapture {
    /// The `client=` values of every "session ended" line so far.
    var sessionClients: [String] {
        self.text.split(separator: "\n").filter { $0.contains("session ended") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("client=") }.map { String($0.dropFirst("client=".count)) }
        }
    }

    /// Waits until `count` sessions have logged their end; returns their clients.
    func waitForSessionClients(_ count: Int, timeout: Duration = .seconds(5)) async -> [String] {
        _ = await Relay.eventually(timeout: timeout) { self.sessionClients.count >= count }
        return self.sessionClients
    }
}

// MARK: - Randomness

/// SplitMix64: a small seeded generator, so a fuzz failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
