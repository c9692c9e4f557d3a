import NIOWebSocket

/// The fixed part of a WebSocket frame, as read off the wire.
public struct WebSocketFrameHeader: Equatable, Sendable {
    public var fin: Bool
    /// RSV1–RSV3 as the 0x70 bits of the first byte; no extension is ever negotiated, so any bit set is an error.
    public var reservedBits: UInt8
    /// The raw 4-bit opcode.
    public var opcode: UInt8
    public var maskKey: WebSocketMaskingKey?
    public var payloadLength: UInt64

    public init(fin: Bool, reservedBits: UInt8 = 0, opcode: UInt8, maskKey: WebSocketMaskingKey?, payloadLength: UInt64) {
        self.fin = fin
        self.reservedBits = reservedBits
        self.opcode = opcode
        self.maskKey = maskKey
        self.payloadLength = payloadLength
    }

    /// Opcodes 0x8–0xF are control frames.
    public var isControl: Bool { self.opcode & 0x8 != 0 }
}
