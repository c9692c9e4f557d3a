import NIOCore
import Testing

@testable import FerryCore

@Suite("Unit: payload buffer pool")
struct PayloadBufferPoolUnitTests {
    let allocator = ByteBufferAllocator()

    /// Where a buffer's bytes live; two buffers with one address share storage.
    func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withVeryUnsafeBytes { UnsafeRawPointer($0.baseAddress) }
    }

    /// Fills a loan the way the decoder does, and gives it back.
    func filled(_ pool: PayloadBufferPool, size: Int, byte: UInt8) -> ByteBuffer {
        var loan = pool.take(size: size, allocator: self.allocator)
        let before = self.address(loan.buffer)
        loan.buffer.writeRepeatingByte(byte, count: size)
        #expect(self.address(loan.buffer) == before, "filling a loan must not copy it")
        return pool.giveBack(loan)
    }

    @Test func aBufferTheBackendHasLetGoOfIsReused() {
        let pool = PayloadBufferPool(capacity: 2)
        var first: ByteBuffer? = self.filled(pool, size: 64 * 1024, byte: 1)
        let firstAddress = self.address(first!)
        first = nil  // written out by the backend
        // The pool kept the storage alive, so an equal address means it was reused, not re-allocated.
        let second = self.filled(pool, size: 64 * 1024, byte: 2)
        #expect(self.address(second) == firstAddress)
        #expect(second.readableBytes == 64 * 1024)
        _ = first
    }

    @Test func aBufferStillQueuedIsNotLentAgain() {
        let pool = PayloadBufferPool(capacity: 2)
        let queued = self.filled(pool, size: 32 * 1024, byte: 7)
        let other = self.filled(pool, size: 32 * 1024, byte: 8)
        #expect(self.address(other) != self.address(queued))
        #expect(queued.readableBytesView.allSatisfy { $0 == 7 }, "the queued bytes are untouched")
    }

    @Test func smallReadsGetExactBuffersOutsideThePool() {
        let pool = PayloadBufferPool(capacity: 2)
        let small = pool.take(size: 64, allocator: self.allocator)
        #expect(small.buffer.capacity < PayloadBufferPool.minimumPooledSize)
        _ = pool.giveBack(small)
        #expect(pool.pooledCount == 0)
    }

    @Test func thePoolKeepsAtMostItsCapacity() {
        let pool = PayloadBufferPool(capacity: 2)
        let queued = (0..<4).map { byte in self.filled(pool, size: 32 * 1024, byte: UInt8(byte)) }
        #expect(Set(queued.map { self.address($0) }).count == 4)
        #expect(pool.pooledCount == 2)
    }

    @Test func aLargerRequestGrowsAReusedBuffer() {
        let pool = PayloadBufferPool(capacity: 1)
        _ = self.filled(pool, size: 16 * 1024, byte: 1)
        let bigger = pool.take(size: 200 * 1024, allocator: self.allocator)
        #expect(bigger.buffer.capacity >= 200 * 1024)
        #expect(bigger.buffer.readableBytes == 0)
    }
}
