import NIOCore

/// Reusable buffers for unmasked client payload, one pool per event loop.
///
/// Every client read of bulk data needs a fresh buffer to unmask into (the read buffer itself belongs
/// to the channel's receive pool). Allocating a new 64–256 KiB buffer per read made the allocator map
/// and unmap pages constantly: page faults took about a quarter of the relay's CPU in an upload. A
/// buffer comes back to the pool by itself once the backend has written it (its storage is then
/// uniquely owned again), so in a steady stream the same few buffers are used over and over.
///
/// Small reads get exact-size buffers instead: handing a 256 KiB buffer to a 64-byte message that then
/// waits in a stalled backend's queue would hold far more memory than the bytes need. The pool holds at
/// most `capacity` buffers, so its own memory per event loop is bounded.
public final class PayloadBufferPool {
    /// Reads below this size are not worth a pooled buffer.
    public static let minimumPooledSize = 16 * 1024

    private let capacity: Int
    /// Pooled buffers; a slot is nil while its buffer is lent out for filling.
    private var slots: [ByteBuffer?] = []
    private var next = 0

    /// Four buffers per event loop: enough for a read burst to reuse, little memory held at rest.
    public init(capacity: Int = 4) {
        self.capacity = capacity
    }

    /// How many buffers the pool keeps (for tests).
    var pooledCount: Int { self.slots.count }

    /// Lends an empty buffer with room for `size` bytes that nobody else holds, so writing into it
    /// costs no copy. Give it back with ``giveBack(_:)`` once filled, before passing it on.
    public func take(size: Int, allocator: ByteBufferAllocator) -> Loan {
        guard size >= Self.minimumPooledSize else { return Loan(buffer: allocator.buffer(capacity: size), slot: nil) }
        for offset in 0..<self.slots.count {
            let index = (self.next + offset) % self.slots.count
            guard var candidate = self.slots[index] else { continue }
            self.slots[index] = nil
            // Unique: the backend has written it and let go. Otherwise it stays in its slot.
            let reusable = candidate.modifyIfUniquelyOwned { buffer in buffer.clear(minimumCapacity: size) } != nil
            if reusable {
                self.next = index + 1
                return Loan(buffer: candidate, slot: index)
            }
            self.slots[index] = candidate
        }
        let fresh = allocator.buffer(capacity: size)
        guard self.slots.count < self.capacity else { return Loan(buffer: fresh, slot: nil) }
        self.slots.append(nil)
        return Loan(buffer: fresh, slot: self.slots.count - 1)
    }

    /// Takes a filled buffer back into its slot (the pool then shares it with whoever writes it out)
    /// and returns it to be passed on.
    public func giveBack(_ loan: Loan) -> ByteBuffer {
        if let slot = loan.slot { self.slots[slot] = loan.buffer }
        return loan.buffer
    }

    /// A buffer lent by the pool, with the slot it returns to.
    public struct Loan {
        public var buffer: ByteBuffer
        let slot: Int?
    }
}

@available(*, unavailable)
extension PayloadBufferPool: Sendable {}

/// One ``PayloadBufferPool`` per event loop of a group, looked up by the loop a channel runs on.
public struct PayloadBufferPools: Sendable {
    /// Each box is filled on first use, on its own loop (a loop-bound value cannot be made elsewhere).
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<PayloadBufferPool?>]

    public init(group: EventLoopGroup) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<PayloadBufferPool?>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = .makeEmptyBox(valueType: PayloadBufferPool.self, eventLoop: loop)
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`; must be called on that loop. Nil for a loop outside the group.
    public func pool(for eventLoop: EventLoop) -> PayloadBufferPool? {
        guard let box = self.pools[ObjectIdentifier(eventLoop)] else { return nil }
        if let pool = box.value { return pool }
        let pool = PayloadBufferPool()
        box.value = pool
        return pool
    }
}
