import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Gives memory that ended sessions freed back to the system once load falls.
///
/// glibc keeps freed memory in its arenas for reuse, so after a burst the process stays near its peak
/// size however few sessions are left (measured: 887 MiB after a 2,000-session burst, with 1.7 MB in
/// use). `malloc_trim(0)` returns what is free. It is asked for when the count of sessions has fallen
/// to half of its peak since the last trim (and by at least ``minimumDrop``), checked every few seconds,
/// and run off the event loops because it walks the whole heap. Other C libraries return memory by
/// themselves; there it does nothing.
struct MemoryTrimPolicy: Sendable, Equatable {
    /// Fewer sessions than this gone since the last trim free too little to be worth a heap walk.
    static let minimumDrop = 64

    /// The most sessions seen since the last trim.
    private(set) var peak = 0

    /// Called at each check with the count now and the most open since the last check; true: trim now.
    mutating func shouldTrim(open: Int, peakSinceLastCheck: Int = 0) -> Bool {
        self.peak = max(self.peak, open, peakSinceLastCheck)
        guard self.peak - open >= Self.minimumDrop, open <= self.peak / 2 else { return false }
        self.peak = open
        return true
    }
}

/// Checks a ``SessionRegistry`` every `interval` and trims the heap when ``MemoryTrimPolicy`` says so.
final class MemoryTrimmer: Sendable {
    static let interval = TimeAmount.seconds(5)

    private let task: RepeatedTask

    init(registry: SessionRegistry, on loop: EventLoop) {
        let policy = NIOLockedValueBox(MemoryTrimPolicy())
        self.task = loop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { _ in
            let (open, peak) = registry.takePeak()
            guard policy.withLockedValue({ $0.shouldTrim(open: open, peakSinceLastCheck: peak) }) else { return }
            Task.detached(priority: .background) { Self.trim() }
        }
    }

    func cancel() {
        self.task.cancel()
    }

    /// glibc's `malloc_trim`, looked up at run time: it is not in Swift's Glibc module, and other C
    /// libraries do not have it.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    static func trim() {
        _ = Self.mallocTrim?(0)
    }
}
