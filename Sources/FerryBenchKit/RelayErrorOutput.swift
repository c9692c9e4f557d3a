import Foundation

/// What a relay process writes to stderr, read as it comes on a thread of its own: a chatty relay
/// (websockify logs every connection, websocat every ping it drops) would otherwise fill the pipe,
/// block, and be measured stuck. The last 16 KiB are kept for the message when it fails to start.
final class RelayErrorOutput: @unchecked Sendable {
    private static let kept = 16 * 1024
    private let lock = NSLock()
    private var tail = Data()
    private var ended = false

    /// Starts reading; the thread ends when every process holding the pipe's write end has exited.
    init(reading pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while let data = try? handle.read(upToCount: 64 * 1024), !data.isEmpty {
                self.lock.withLock {
                    self.tail.append(data)
                    if self.tail.count > Self.kept { self.tail = Data(self.tail.suffix(Self.kept)) }
                }
            }
            self.lock.withLock { self.ended = true }
        }
    }

    /// The text kept, once the pipe has ended or `wait` has passed.
    func text(waitingUpTo wait: Duration) async -> String {
        let deadline = ContinuousClock.now + wait
        while !self.lock.withLock({ self.ended }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.lock.withLock { String(decoding: self.tail, as: UTF8.self) }
    }
}
