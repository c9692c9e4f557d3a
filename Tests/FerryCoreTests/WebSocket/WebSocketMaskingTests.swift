import NIOCore
import NIOWebSocket
import Testing

@testable import FerryCore

/// `WebSocketMasking.apply` and `ByteBuffer.writeMasked` against a byte-by-byte reference XOR.
@Suite("Unit: WebSocket masking")
struct WebSocketMaskingUnitTests {
    /// Distinct key bytes, so a wrong phase or key rotation changes the result.
    private static let key = WebSocketMaskingKey([0x37, 0xFA, 0x21, 0x3D])!
    private static let lengths: [Int] = Array(0...300) + [1023, 1024, 1025, 4099, 65537]

    @Test("apply matches the reference for every length", arguments: 0..<4)
    func applyMatchesReference(phase: Int) {
        for length in Self.lengths {
            let source = maskingPattern(length, seed: UInt32(length &+ phase))
            // Two sentinel bytes past the end must stay untouched.
            var destination = [UInt8](repeating: 0xA5, count: length + 2)
            source.withUnsafeBytes { src in
                destination.withUnsafeMutableBytes { dst in
                    WebSocketMasking.apply(key: Self.key, phase: phase, from: src, to: dst)
                }
            }
            let expected = referenceMask(source, key: Self.key, phase: phase)
            #expect(Array(destination[..<length]) == expected, "length \(length), phase \(phase)")
            #expect(destination[length...].allSatisfy { $0 == 0xA5 }, "wrote past the end: length \(length), phase \(phase)")
        }
    }

    @Test("apply works in place", arguments: 0..<4)
    func applyInPlace(phase: Int) {
        for length in Self.lengths {
            let original = maskingPattern(length, seed: UInt32(length &* 7 &+ phase))
            var bytes = original
            bytes.withUnsafeMutableBytes { buffer in
                WebSocketMasking.apply(key: Self.key, phase: phase, from: UnsafeRawBufferPointer(buffer), to: buffer)
            }
            #expect(bytes == referenceMask(original, key: Self.key, phase: phase), "length \(length), phase \(phase)")
            // Masking twice restores the input.
            bytes.withUnsafeMutableBytes { buffer in
                WebSocketMasking.apply(key: Self.key, phase: phase, from: UnsafeRawBufferPointer(buffer), to: buffer)
            }
            #expect(bytes == original, "length \(length), phase \(phase)")
        }
    }

    @Test("apply handles unaligned source and destination", arguments: 0..<4)
    func applyUnaligned(phase: Int) {
        let length = 300
        let storage = maskingPattern(length + 8, seed: 99)
        for sourceOffset in 0..<8 {
            for destinationOffset in [0, 1, 3, 5] {
                let source = Array(storage[sourceOffset..<(sourceOffset + length)])
                var destination = [UInt8](repeating: 0, count: length + 8)
                storage.withUnsafeBytes { src in
                    destination.withUnsafeMutableBytes { dst in
                        WebSocketMasking.apply(
                            key: Self.key,
                            phase: phase,
                            from: UnsafeRawBufferPointer(rebasing: src[sourceOffset..<(sourceOffset + length)]),
                            to: UnsafeMutableRawBufferPointer(rebasing: dst[destinationOffset...])
                        )
                    }
                }
                let expected = referenceMask(source, key: Self.key, phase: phase)
                #expect(
                    Array(destination[destinationOffset..<(destinationOffset + length)]) == expected,
                    "source offset \(sourceOffset), destination offset \(destinationOffset), phase \(phase)"
                )
            }
        }
    }

    @Test("apply with an empty source writes nothing")
    func applyEmpty() {
        var destination: [UInt8] = [1, 2, 3]
        [UInt8]().withUnsafeBytes { src in
            destination.withUnsafeMutableBytes { dst in
                WebSocketMasking.apply(key: Self.key, phase: 2, from: src, to: dst)
            }
        }
        #expect(destination == [1, 2, 3])
    }

    @Test("a payload masked in pieces with carried phase equals masking it whole")
    func piecesWithCarriedPhase() {
        let payload = maskingPattern(1000, seed: 5)
        let whole = referenceMask(payload, key: Self.key, phase: 0)
        for cuts in [[1], [3, 7], [31, 33, 64], [5, 13, 257, 999], [8, 16, 24, 32]] {
            var output = ByteBuffer()
            var start = 0
            for end in cuts + [payload.count] {
                let piece = ByteBuffer(bytes: payload[start..<end])
                output.writeMasked(piece, key: Self.key, phase: start & 3)
                start = end
            }
            #expect(Array(output.readableBytesView) == whole, "cuts \(cuts)")
        }
    }

    @Test("writeMasked appends the masked readable bytes", arguments: 0..<4)
    func writeMaskedMatchesReference(phase: Int) {
        let prefix: [UInt8] = [0xDE, 0xAD, 0xBE]
        for length in Self.lengths {
            let payload = maskingPattern(length, seed: UInt32(length &+ 1000 &* phase))
            // The source has bytes before its reader index and after them; only the readable ones count.
            var source = ByteBuffer(bytes: [0xEE, 0xEE] + payload)
            source.moveReaderIndex(forwardBy: 2)
            var destination = ByteBuffer(bytes: prefix)
            destination.writeMasked(source, key: Self.key, phase: phase)
            #expect(
                Array(destination.readableBytesView) == prefix + referenceMask(payload, key: Self.key, phase: phase),
                "length \(length), phase \(phase)"
            )
            #expect(source.readableBytes == length, "writeMasked must not consume its source")
            #expect(Array(source.readableBytesView) == payload, "writeMasked must not modify its source")
        }
    }

    @Test("writeMasked from a slice of a larger buffer")
    func writeMaskedFromSlice() {
        let bytes = maskingPattern(5000, seed: 42)
        let whole = ByteBuffer(bytes: bytes)
        for (offset, length) in [(0, 0), (1, 4099), (7, 300), (4095, 905), (13, 31)] {
            let slice = whole.getSlice(at: offset, length: length)!
            var destination = ByteBuffer()
            destination.writeMasked(slice, key: Self.key, phase: offset & 3)
            #expect(
                Array(destination.readableBytesView)
                    == referenceMask(Array(bytes[offset..<(offset + length)]), key: Self.key, phase: offset & 3),
                "offset \(offset), length \(length)"
            )
        }
    }

    @Test("writeMasked into a buffer that must grow")
    func writeMaskedGrows() {
        let payload = maskingPattern(65537, seed: 3)
        var destination = ByteBuffer()
        destination.reserveCapacity(4)
        destination.writeMasked(ByteBuffer(bytes: payload), key: Self.key, phase: 1)
        #expect(destination.readableBytes == payload.count)
        #expect(Array(destination.readableBytesView) == referenceMask(payload, key: Self.key, phase: 1))
    }

    @Test("writeMasked with an empty source leaves the buffer unchanged")
    func writeMaskedEmpty() {
        var destination = ByteBuffer(bytes: [9, 8, 7])
        destination.writeMasked(ByteBuffer(), key: Self.key, phase: 3)
        #expect(Array(destination.readableBytesView) == [9, 8, 7])
    }

    @Test("the reference itself: RFC 6455 example masks 'Hello'")
    func referenceSanity() {
        // RFC 6455 §5.7: a masked "Hello" with key 37 fa 21 3d.
        let masked: [UInt8] = [0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(referenceMask(Array("Hello".utf8), key: Self.key, phase: 0) == masked)
        var output = ByteBuffer()
        output.writeMasked(ByteBuffer(bytes: masked), key: Self.key, phase: 0)
        #expect(String(buffer: output) == "Hello")
    }
}

/// The obvious byte-at-a-time masking the optimised code must agree with.
private func referenceMask(_ bytes: [UInt8], key: WebSocketMaskingKey, phase: Int) -> [UInt8] {
    var result = [UInt8]()
    result.reserveCapacity(bytes.count)
    for (index, byte) in bytes.enumerated() {
        result.append(byte ^ key[(phase + index) % 4])
    }
    return result
}

/// Deterministic pseudo-random bytes (a small LCG).
private func maskingPattern(_ count: Int, seed: UInt32) -> [UInt8] {
    var state = seed &* 2_654_435_761 &+ 12345
    var result = [UInt8]()
    result.reserveCapacity(count)
    for _ in 0..<count {
        state = state &* 1_664_525 &+ 1_013_904_223
        result.append(UInt8(truncatingIfNeeded: state >> 24))
    }
    return result
}
