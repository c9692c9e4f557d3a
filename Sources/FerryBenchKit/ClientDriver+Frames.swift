import FerryCore
import NIOCore
import NIOWebSocket

/// The bytes the client puts on the wire: binary frames and pings, masked with one fixed key as a
/// client must, built once and written again and again so that the client costs little per byte.
extension ClientDriver {
    static let maskKey: WebSocketMaskingKey = [0x37, 0xFA, 0x21, 0x3D]

    /// 500 masked pings with 125-byte payloads (the largest a control frame may carry), back to back.
    func pingBatch() -> ByteBuffer {
        let allocator = self.context!.channel.allocator
        let payload = Self.masked(allocator.buffer(repeating: 0x50, count: 125), allocator: allocator)
        var batch = allocator.buffer(capacity: 500 * 131)
        for _ in 0..<500 {
            batch.writeInteger(UInt8(0x89))
            batch.writeInteger(UInt8(0x80 | 125))
            batch.writeBytes(Self.maskKey)
            batch.writeImmutableBuffer(payload)
        }
        return batch
    }

    func countPrefix(_ count: UInt64) -> ByteBuffer {
        var buffer = self.context!.channel.allocator.buffer(capacity: 8)
        buffer.writeInteger(count)
        return self.frame(buffer)
    }

    /// A whole binary frame (masked, as a client must) around `payload`, or the payload itself on plain TCP.
    func frame(_ payload: ByteBuffer) -> ByteBuffer {
        guard self.isWebSocket else { return payload }
        let allocator = self.context!.channel.allocator
        var frame = allocator.buffer(capacity: payload.readableBytes + 14)
        frame.writeInteger(UInt8(0x82))
        let count = payload.readableBytes
        if count < 126 {
            frame.writeInteger(UInt8(0x80 | count))
        } else if count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(count))
        }
        frame.writeBytes(Self.maskKey)
        frame.writeMasked(payload, key: Self.maskKey, phase: 0)
        return frame
    }

    static func masked(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: payload.readableBytes)
        out.writeMasked(payload, key: Self.maskKey, phase: 0)
        return out
    }
}
