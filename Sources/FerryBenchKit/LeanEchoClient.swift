import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Round trips through an echo backend on one blocking connection, on a thread of its own: write one
/// message, read until all of it has come back, again. The client's own share of a round trip is a
/// `send` and one or two `recv`s, with no event-loop hop, so a relay's round-trip time is not hidden
/// under the client's.
public struct LeanEchoClient: Sendable {
    public let port: Int
    public let isWebSocket: Bool

    public init(port: Int, isWebSocket: Bool) {
        self.port = port
        self.isWebSocket = isWebSocket
    }

    /// Nanoseconds per round trip of a `size`-byte message, sorted; `count` of them after `warmUp`.
    public func roundTrips(count: Int, size: Int, warmUp: Int = 200) async throws -> [UInt64] {
        let port = self.port
        let isWebSocket = self.isWebSocket
        return try await withCheckedThrowingContinuation { (finished: CheckedContinuation<[UInt64], Error>) in
            let thread = Thread {
                do {
                    finished.resume(returning: try Self.run(port: port, isWebSocket: isWebSocket, count: count, size: size, warmUp: warmUp))
                } catch {
                    finished.resume(throwing: error)
                }
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    private static func run(port: Int, isWebSocket: Bool, count: Int, size: Int, warmUp: Int) throws -> [UInt64] {
        let socket = try BlockingSocket(port: port)
        defer { socket.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        if isWebSocket {
            try Array(LeanWebSocket.upgradeRequest(port: port).utf8).withUnsafeBytes { (request) in
                try socket.writeAll(request)
            }
            try LeanWebSocket.readSwitchingProtocols(from: socket, buffer: buffer)
        }
        let message = isWebSocket ? LeanWebSocket.maskedBinaryFrame(payloadSize: size) : [UInt8](repeating: 0x61, count: size)
        var durations: [UInt64] = []
        durations.reserveCapacity(count)
        var counter = ServerFramePayloadCounter()
        try message.withUnsafeBytes { (outgoing) in
            for index in 0..<(warmUp + count) {
                let began = monotonicNanoseconds()
                try socket.writeAll(outgoing)
                var received = 0
                while received < size {
                    let read = try socket.read(into: buffer)
                    guard read > 0 else { throw LeanClientError.closedEarly("during the round trips") }
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<read])
                    received += isWebSocket ? try counter.consume(bytes) : read
                }
                if index >= warmUp { durations.append(monotonicNanoseconds() - began) }
            }
        }
        return durations.sorted()
    }
}

extension LeanWebSocket {
    /// One masked binary frame with a payload of `payloadSize` bytes (at most 65,535).
    static func maskedBinaryFrame(payloadSize: Int) -> [UInt8] {
        let mask: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        var frame: [UInt8] = [0x82]
        if payloadSize < 126 {
            frame.append(0x80 | UInt8(payloadSize))
        } else {
            frame += [0x80 | 126, UInt8(payloadSize >> 8), UInt8(payloadSize & 0xFF)]
        }
        frame += mask
        frame += (0..<payloadSize).map { UInt8(ascii: "a") ^ mask[$0 % 4] }
        return frame
    }
}

/// Counts the payload bytes of the data frames a server sends (unmasked, RFC 6455 §5.1), across
/// reads, without copying them; a close frame ends the count with an error.
struct ServerFramePayloadCounter {
    private enum State {
        case firstByte
        case lengthByte(isData: Bool)
        case extendedLength(isData: Bool, remaining: Int, value: Int)
        case payload(isData: Bool, remaining: Int)
    }

    private var state = State.firstByte

    /// Data payload bytes in `bytes`.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(LeanClientError) -> Int {
        var dataBytes = 0
        var index = 0
        while index < bytes.count {
            switch self.state {
            case .firstByte:
                let opcode = bytes[index] & 0x0F
                if opcode == 0x8 { throw LeanClientError.closedEarly("with a close frame during the round trips") }
                self.state = .lengthByte(isData: opcode < 0x8)
                index += 1
            case .lengthByte(let isData):
                let length = Int(bytes[index] & 0x7F)
                index += 1
                switch length {
                case 126: self.state = .extendedLength(isData: isData, remaining: 2, value: 0)
                case 127: self.state = .extendedLength(isData: isData, remaining: 8, value: 0)
                default: self.state = length == 0 ? .firstByte : .payload(isData: isData, remaining: length)
                }
            case .extendedLength(let isData, let remaining, let value):
                let next = value << 8 | Int(bytes[index])
                index += 1
                if remaining > 1 {
                    self.state = .extendedLength(isData: isData, remaining: remaining - 1, value: next)
                } else {
                    self.state = next == 0 ? .firstByte : .payload(isData: isData, remaining: next)
                }
            case .payload(let isData, let remaining):
                let taken = min(remaining, bytes.count - index)
                if isData { dataBytes += taken }
                index += taken
                self.state = taken == remaining ? .firstByte : .payload(isData: isData, remaining: remaining - taken)
            }
        }
        return dataBytes
    }
}
