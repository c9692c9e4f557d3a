import NIOCore
import NIOWebSocket

/// Writes a client's frames (RFC 6455 §5.2–5.3): the header, then the payload masked with a fresh
/// random key, both in one buffer, with masking fused with the copy (``ByteBuffer/writeMasked``,
/// word-wise). The copy is the one masking requires: the payload is the local side's read buffer,
/// which must not be masked in place.
///
/// Keys come from ``BufferedKernelRandom``: the kernel's CSPRNG, read 4 KiB at a
/// time, so a small frame (a keystroke) costs no system call beyond its write.
final class MaskingFrameEncoder: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    /// Opcode byte, length byte, 8 length bytes, 4 key bytes.
    static let maxHeaderSize = 14

    private var random = BufferedKernelRandom()

    init() {}

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = Self.unwrapOutboundIn(data)
        let key = WebSocketMaskingKey.random(using: &self.random)
        let payload = frame.data
        var buffer = context.channel.allocator.buffer(capacity: Self.maxHeaderSize + payload.readableBytes)
        Self.writeHeader(fin: frame.fin, opcode: frame.opcode, length: payload.readableBytes, key: key, into: &buffer)
        buffer.writeMasked(payload, key: key, phase: 0)
        context.write(Self.wrapOutboundOut(buffer), promise: promise)
    }

    static func writeHeader(fin: Bool, opcode: WebSocketOpcode, length: Int, key: WebSocketMaskingKey, into buffer: inout ByteBuffer) {
        buffer.writeInteger((fin ? 0x80 : 0) | UInt8(webSocketOpcode: opcode))
        switch length {
        case ..<126:
            buffer.writeInteger(0x80 | UInt8(length))
        case ...0xFFFF:
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeInteger(key[0])
        buffer.writeInteger(key[1])
        buffer.writeInteger(key[2])
        buffer.writeInteger(key[3])
    }
}

@available(*, unavailable)
extension MaskingFrameEncoder: Sendable {}
