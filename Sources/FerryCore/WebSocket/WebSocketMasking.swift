import NIOCore
import NIOWebSocket

/// Word-at-a-time XOR masking for WebSocket payloads.
///
/// NIO's `ByteBuffer.webSocketUnmask` XORs one byte per loop iteration (~0.5 GB/s); every byte a
/// client sends passes through here, so this works on 32-byte blocks of four `UInt64` words with the
/// key repeated and rotated to the current phase, and finishes the tail byte by byte.
public enum WebSocketMasking {
    /// Writes `source` XOR the masking key into `destination`, which must be at least as long.
    ///
    /// - Parameters:
    ///   - key: the frame's masking key.
    ///   - phase: the position within the key of `source`'s first byte (payload offset modulo 4);
    ///     a frame delivered in pieces keeps its phase across pieces.
    ///
    /// `source` and `destination` may be the same memory (in-place unmasking).
    @inlinable
    public static func apply(
        key: WebSocketMaskingKey,
        phase: Int,
        from source: UnsafeRawBufferPointer,
        to destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(destination.count >= source.count)
        let count = source.count
        guard count > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        // The key bytes as they must lie in memory, starting at `phase`, repeated to 8 bytes.
        let k0 = UInt64(key[phase & 3])
        let k1 = UInt64(key[(phase + 1) & 3])
        let k2 = UInt64(key[(phase + 2) & 3])
        let k3 = UInt64(key[(phase + 3) & 3])
        let quad = k0 | (k1 << 8) | (k2 << 16) | (k3 << 24)
        let word = (quad | (quad << 32)).littleEndian

        var index = 0
        while index + 32 <= count {
            let a = src.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = src.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            let c = src.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            let d = src.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            dst.storeBytes(of: a ^ word, toByteOffset: index, as: UInt64.self)
            dst.storeBytes(of: b ^ word, toByteOffset: index + 8, as: UInt64.self)
            dst.storeBytes(of: c ^ word, toByteOffset: index + 16, as: UInt64.self)
            dst.storeBytes(of: d ^ word, toByteOffset: index + 24, as: UInt64.self)
            index += 32
        }
        while index + 8 <= count {
            let a = src.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            dst.storeBytes(of: a ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let byte = src.load(fromByteOffset: index, as: UInt8.self) ^ key[(phase + index) & 3]
            dst.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }
}

extension ByteBuffer {
    /// Appends `source`'s readable bytes XOR the masking key, in one pass (copy and unmask together).
    ///
    /// Unmasking in place would copy anyway: the bytes a channel reads live in a buffer its receive
    /// pool still holds, so the first write to them triggers copy-on-write of the whole read.
    @inlinable
    public mutating func writeMasked(_ source: ByteBuffer, key: WebSocketMaskingKey, phase: Int) {
        let count = source.readableBytes
        guard count > 0 else { return }
        self.reserveCapacity(minimumWritableBytes: count)
        let written = source.withUnsafeReadableBytes { src in
            self.withUnsafeMutableWritableBytes { dst in
                WebSocketMasking.apply(key: key, phase: phase, from: src, to: dst)
                return count
            }
        }
        self.moveWriterIndex(forwardBy: written)
    }
}
