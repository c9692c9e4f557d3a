import NIOCore
import NIOWebSocket

/// Writes a client's frames (RFC 6455 §5.2–5.3): the header, then the payload masked with a fresh
/// random key, both in one buffer, with masking fused with the copy (``ByteBuffer/writeMasked``,
/// word-wise). The copy is the one masking requires: the payload is the local side's read buffer,
/// which must not be masked in place.
///
/// Keys come from `SystemRandomNumberGenerator`: the kernel's CSPRNG through getrandom(2), so no
/// generator state lives in the process to seed or to fork, and a key costs one system call without
/// a file descriptor. Frames carry a whole read (up to 128 KiB), so that call is far below the
/// cost of the copy. Keys must be unpredictable (§10.3: a predictable key lets a page's script
/// forge bytes that a proxy on the path could take for requests), hence no faster userspace PRNG.
final class MaskingFrameEncoder: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    /// Opcode byte, length byte, 8 length bytes, 4 key bytes.
    static let maxHeaderSize = 14

    private var random = SystemRandomNumberGenerator()

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
