import NIOCore
import NIOWebSocket

/// A streaming WebSocket frame parser: it yields a frame's header as soon as it is complete and then the
/// payload in pieces, as the bytes arrive.
///
/// Why not NIO's `WebSocketFrameDecoder`: it holds a frame until its whole payload has arrived, so a 1 GiB
/// frame would need 1 GiB of memory. A relay only needs to pass payload bytes on, so this parser never
/// holds more than a 14-byte partial header; payload pieces are slices of the bytes that were read.
///
/// Checks that need only the header are made here, before any payload is accepted (RFC 6455 §5.2):
/// reserved bits, reserved opcodes, control frames that are fragmented or longer than 125 bytes, the
/// masking rule for the role, and length encodings that are not minimal or use the 64th bit.
/// Rules that span frames (continuations, UTF-8, message size) live in ``WebSocketMessageRules``.
public struct WebSocketFrameParser: Sendable {
    /// Which side of the connection this parser reads for.
    public enum Role: Sendable {
        /// Reads frames sent by a client: every frame must be masked.
        case server
        /// Reads frames sent by a server: no frame may be masked.
        case client
    }

    public enum Event {
        /// A frame's header has been read and passed the header checks.
        case header(WebSocketFrameHeader)
        /// The next piece of the current frame's payload, still masked; `maskPhase` is the payload offset
        /// of its first byte modulo 4.
        case payload(ByteBuffer, maskKey: WebSocketMaskingKey?, maskPhase: Int)
        /// The current frame's payload is complete.
        case frameEnd
    }

    private enum State {
        case header
        case payload(remaining: UInt64, maskKey: WebSocketMaskingKey?, phase: Int)
    }

    public let role: Role
    private var state: State = .header
    /// Bytes of a header that arrived split across reads (at most 13).
    private var partialHeader: ByteBuffer? = nil

    public init(role: Role) {
        self.role = role
    }

    /// Returns the next event that `input` allows, consuming the bytes it covers, or `nil` when more
    /// input is needed (everything usable has then been consumed or stashed).
    public mutating func next(_ input: inout ByteBuffer) throws(WebSocketProtocolError) -> Event? {
        switch self.state {
        case .header:
            return try self.nextHeader(&input)
        case .payload(let remaining, let maskKey, let phase):
            if remaining == 0 {
                self.state = .header
                return .frameEnd
            }
            guard input.readableBytes > 0 else { return nil }
            let count = Int(min(remaining, UInt64(input.readableBytes)))
            let piece = input.readSlice(length: count)!
            self.state = .payload(remaining: remaining - UInt64(count), maskKey: maskKey, phase: (phase + count) & 3)
            return .payload(piece, maskKey: maskKey, maskPhase: phase)
        }
    }

    private mutating func nextHeader(_ input: inout ByteBuffer) throws(WebSocketProtocolError) -> Event? {
        if var stash = self.partialHeader {
            // Move bytes over one at a time until the header is complete; at most 13 iterations.
            while true {
                if let (header, used) = try self.parseHeader(stash.readableBytesView) {
                    assert(used == stash.readableBytes)
                    self.partialHeader = nil
                    return self.begin(header)
                }
                guard let byte = input.readInteger(as: UInt8.self) else {
                    self.partialHeader = stash
                    return nil
                }
                stash.writeInteger(byte)
            }
        }
        if let (header, used) = try self.parseHeader(input.readableBytesView) {
            input.moveReaderIndex(forwardBy: used)
            return self.begin(header)
        }
        if input.readableBytes > 0 {
            var stash = ByteBuffer()
            stash.reserveCapacity(14)
            stash.writeBuffer(&input)
            self.partialHeader = stash
        }
        return nil
    }

    private mutating func begin(_ header: WebSocketFrameHeader) -> Event {
        self.state = .payload(remaining: header.payloadLength, maskKey: header.maskKey, phase: 0)
        return .header(header)
    }

    /// Parses a header from the start of `bytes`, checking each rule as soon as the bytes it needs are
    /// there. Returns `nil` if `bytes` holds only part of a (so far valid) header.
    private func parseHeader(_ bytes: ByteBufferView) throws(WebSocketProtocolError) -> (WebSocketFrameHeader, Int)? {
        guard bytes.count >= 2 else { return nil }
        var index = bytes.startIndex
        let first = bytes[index]
        let second = bytes[index + 1]
        index += 2

        let fin = first & 0x80 != 0
        let reserved = first & 0x70
        let opcode = first & 0x0F
        let masked = second & 0x80 != 0
        let shortLength = second & 0x7F

        if reserved != 0 {
            throw .protocolViolation("reserved bits set without a negotiated extension")
        }
        switch opcode {
        case 0x0, 0x1, 0x2, 0x8, 0x9, 0xA: break
        default: throw .protocolViolation("reserved opcode \(opcode)")
        }
        let isControl = opcode & 0x8 != 0
        if isControl && !fin { throw .protocolViolation("fragmented control frame") }
        if isControl && shortLength > 125 { throw .protocolViolation("control frame longer than 125 bytes") }
        switch self.role {
        case .server where !masked: throw .protocolViolation("unmasked frame from client")
        case .client where masked: throw .protocolViolation("masked frame from server")
        default: break
        }

        let length: UInt64
        switch shortLength {
        case 126:
            guard bytes.count >= index - bytes.startIndex + 2 else { return nil }
            length = UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
            if length < 126 { throw .protocolViolation("payload length not minimally encoded") }
        case 127:
            guard bytes.count >= index - bytes.startIndex + 8 else { return nil }
            var value: UInt64 = 0
            for offset in 0..<8 { value = value << 8 | UInt64(bytes[index + offset]) }
            index += 8
            if value & (1 << 63) != 0 { throw .protocolViolation("payload length uses the most significant bit") }
            if value <= 0xFFFF { throw .protocolViolation("payload length not minimally encoded") }
            length = value
        default:
            length = UInt64(shortLength)
        }

        var maskKey: WebSocketMaskingKey? = nil
        if masked {
            guard bytes.count >= index - bytes.startIndex + 4 else { return nil }
            maskKey = MaskKeyBytes.key(bytes[index], bytes[index + 1], bytes[index + 2], bytes[index + 3])
            index += 4
        }
        let header = WebSocketFrameHeader(
            fin: fin,
            reservedBits: reserved,
            opcode: opcode,
            maskKey: maskKey,
            payloadLength: length
        )
        return (header, index - bytes.startIndex)
    }
}

/// Makes a `WebSocketMaskingKey` from four bytes without a heap allocation. NIO's public
/// `init?(_:)` is generic over `Collection` and not specialized across modules: each of its four
/// subscript reads is a coroutine whose frame is allocated, three or four allocations per frame, the
/// most of any step of a relayed message. Its inlinable `random(using:)` takes the key as one
/// 32-bit draw (the first byte in the high bits), so a "generator" that returns the key gives the
/// same key with no allocation (checked against `init?(_:)` in the parser's tests).
struct MaskKeyBytes: RandomNumberGenerator {
    private var value: UInt64

    static func key(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) -> WebSocketMaskingKey {
        var bytes = MaskKeyBytes(value: UInt64(b0) << 24 | UInt64(b1) << 16 | UInt64(b2) << 8 | UInt64(b3))
        return WebSocketMaskingKey.random(using: &bytes)
    }

    private init(value: UInt64) {
        self.value = value
    }

    mutating func next() -> UInt64 {
        self.value
    }
}
