import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens and closes connections as fast as one thread per client can, with blocking sockets and
/// buffers made once per client: a client that is not the limit when it measures a relay's
/// connection set-up (its ceiling is shown against a server that answers the upgrade and connects
/// nothing, `MinimalWebSocketServer`).
///
/// One WebSocket handshake is: connect, the upgrade request, read up to the end of the `101`
/// response, a masked close frame, read until the server ends the connection, close. One plain TCP
/// "handshake" (the floor, straight to an echo backend) is: connect, shut down writing, read until
/// the backend ends the connection, close.
public struct LeanHandshakeClient: Sendable {
    public enum Mode: Sendable {
        case webSocket
        case tcp
    }

    /// Handshakes completed, failures, wall time and each handshake's duration.
    public struct Result: Sendable {
        public var completed: Int
        public var failed: Int
        public var seconds: Double
        /// Nanoseconds per completed handshake, sorted.
        public var durations: [UInt64]
        /// The first failure, for the progress line.
        public var firstError: String?

        public var perSecond: Double { self.seconds > 0 ? Double(self.completed) / self.seconds : 0 }

        public func percentile(_ fraction: Double) -> Double {
            Double(sortedPercentile(self.durations, fraction))
        }
    }

    public let port: Int
    public let mode: Mode
    /// The request target of the upgrade (a route, and a `?token=` for the auth scenario).
    public let path: String

    public init(port: Int, mode: Mode, path: String = "/") {
        self.port = port
        self.mode = mode
        self.path = path
    }

    /// Runs `clients` threads, each making up to `perClient` handshakes one after another, all
    /// stopping after `limitSeconds` whatever the counts.
    public func run(clients: Int, perClient: Int, limitSeconds: Double) async -> Result {
        let port = self.port
        let mode = self.mode
        let path = self.path
        let results = NIOLockedValueBox<[ClientTally]>([])
        let start = monotonicNanoseconds()
        let deadline = start + UInt64(limitSeconds * 1e9)
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let remaining = NIOLockedValueBox(clients)
            for _ in 0..<clients {
                let thread = Thread {
                    let tally = Self.loop(port: port, mode: mode, path: path, count: perClient, deadline: deadline)
                    results.withLockedValue { $0.append(tally) }
                    let last = remaining.withLockedValue { count -> Bool in
                        count -= 1
                        return count == 0
                    }
                    if last { finished.resume() }
                }
                thread.stackSize = 256 * 1024
                thread.start()
            }
        }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let tallies = results.withLockedValue { $0 }
        return Result(
            completed: tallies.reduce(0) { $0 + $1.durations.count },
            failed: tallies.reduce(0) { $0 + $1.failed },
            seconds: seconds,
            durations: tallies.flatMap(\.durations).sorted(),
            firstError: tallies.compactMap(\.firstError).first
        )
    }

    private struct ClientTally: Sendable {
        var durations: [UInt64] = []
        var failed = 0
        var firstError: String?
    }

    /// One client's loop. Everything it needs is made before the first connection.
    private static func loop(port: Int, mode: Mode, path: String, count: Int, deadline: UInt64) -> ClientTally {
        var tally = ClientTally()
        tally.durations.reserveCapacity(count)
        let request = Array(LeanWebSocket.upgradeRequest(port: port, path: path).utf8)
        let closeFrame = LeanWebSocket.maskedCloseFrame
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let began = monotonicNanoseconds()
            if began >= deadline { break }
            do {
                switch mode {
                case .webSocket:
                    try request.withUnsafeBytes { (bytes) in
                        try closeFrame.withUnsafeBytes { (close) in
                            try Self.webSocketHandshake(port: port, request: bytes, close: close, buffer: buffer)
                        }
                    }
                case .tcp:
                    try Self.tcpHandshake(port: port, buffer: buffer)
                }
                tally.durations.append(monotonicNanoseconds() - began)
            } catch {
                tally.failed += 1
                if tally.firstError == nil { tally.firstError = String(describing: error) }
                // A server that refuses (backlog full, out of descriptors) is not hammered in a spin.
                if tally.failed > 100 { break }
            }
            done += 1
        }
        return tally
    }

    private static func webSocketHandshake(
        port: Int, request: UnsafeRawBufferPointer, close: UnsafeRawBufferPointer, buffer: UnsafeMutableRawBufferPointer
    ) throws {
        let socket = try BlockingSocket(port: port)
        defer { socket.close() }
        try socket.writeAll(request)
        try LeanWebSocket.readSwitchingProtocols(from: socket, buffer: buffer)
        try socket.writeAll(close)
        while try socket.read(into: buffer) > 0 {}
    }

    private static func tcpHandshake(port: Int, buffer: UnsafeMutableRawBufferPointer) throws {
        let socket = try BlockingSocket(port: port)
        defer { socket.close() }
        shutdown(socket.descriptor, Int32(SHUT_WR))
        while try socket.read(into: buffer) > 0 {}
    }
}

/// Finds the blank line that ends HTTP response headers, across reads.
struct HeaderEndFinder {
    private var matched = 0
    private(set) var found = false

    mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes where !self.found {
            let expected: UInt8 = self.matched % 2 == 0 ? UInt8(ascii: "\r") : UInt8(ascii: "\n")
            if byte == expected {
                self.matched += 1
                self.found = self.matched == 4
            } else {
                self.matched = byte == UInt8(ascii: "\r") ? 1 : 0
            }
        }
    }
}

/// The fixed bytes the lean clients send.
enum LeanWebSocket {
    static func upgradeRequest(port: Int, path: String = "/") -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    /// A masked close frame with code 1000.
    static let maskedCloseFrame: [UInt8] = {
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        return [0x88, 0x82] + mask + [0x03 ^ mask[0], 0xE8 ^ mask[1]]
    }()

    static func isSwitchingProtocols(_ response: UnsafeRawBufferPointer) -> Bool {
        let prefix = "HTTP/1.1 101".utf8
        return response.count >= prefix.count && zip(response, prefix).allSatisfy { $0 == $1 }
    }

    /// Reads the response to an upgrade request up to its blank line (into `buffer`, which bounds the
    /// headers' size) and throws unless it is `101`.
    static func readSwitchingProtocols(from socket: BlockingSocket, buffer: UnsafeMutableRawBufferPointer) throws {
        var filled = 0
        var end = HeaderEndFinder()
        while !end.found {
            guard filled < buffer.count else { throw LeanClientError.notUpgraded("response headers over \(buffer.count) bytes") }
            let count = try socket.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            guard count > 0 else { throw LeanClientError.closedEarly("before its response ended") }
            end.scan(UnsafeRawBufferPointer(rebasing: buffer[filled..<(filled + count)]))
            filled += count
        }
        guard Self.isSwitchingProtocols(UnsafeRawBufferPointer(rebasing: buffer[..<filled])) else {
            let line = String(decoding: buffer[..<min(filled, 40)], as: UTF8.self).split(separator: "\r\n").first ?? ""
            throw LeanClientError.notUpgraded(String(line))
        }
    }
}

/// The value at `fraction` (0.5: the median) of durations sorted ascending; 0 when there are none.
func sortedPercentile(_ sorted: [UInt64], _ fraction: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
