import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `--record PREFIX`: one per server. Numbers the sessions (PREFIX.1, PREFIX.2, …, starting again at 1
/// when the server starts, so older files are overwritten as websockify does), and writes their files
/// off the event loops.
///
/// Sessions hand escaped lines over in memory; one serial dispatch queue opens, writes and closes the
/// files with plain `open(2)`/`write(2)`, so a slow disk never blocks an event loop and at most one
/// thread waits on it. Each session has at most ``maxPendingBytes`` not yet written (see
/// ``SessionRecorder``).
public final class RecordingSink: Sendable {
    /// Files are named `prefix.N`.
    public let prefix: String
    /// Per session: the most escaped bytes waiting for the writer; past it, that session's recording stops.
    let maxPendingBytes: Int
    private let sessionCount = NIOLockedValueBox<Int>(0)
    /// Drain jobs queued or running; zero when everything handed over has been written.
    private let scheduledDrains = NIOLockedValueBox<Int>(0)
    private let queue = DispatchQueue(label: "ferry.record", qos: .utility)

    public static let defaultMaxPendingBytes = 4 * 1024 * 1024

    public init(prefix: String, maxPendingBytes: Int = RecordingSink.defaultMaxPendingBytes) {
        self.prefix = prefix
        self.maxPendingBytes = maxPendingBytes
    }

    /// A recorder for a new session, writing `prefix.N`. Cheap: the file is opened by the writer.
    /// `logger` (the session's, without payloads) gets the file's open, failure and overflow lines.
    func startSession(logger: Logger, now: NIODeadline = .now()) -> SessionRecorder {
        let number = self.sessionCount.withLockedValue { count in
            count += 1
            return count
        }
        let file = File(path: "\(self.prefix).\(number)", logger: logger)
        let recorder = SessionRecorder(sink: self, file: file, started: now)
        return recorder
    }

    /// Waits until everything handed to the writer so far is written (the files of ended sessions are
    /// then complete and closed), or `timeout` passes; returns whether it was. For an orderly exit.
    public func waitUntilWritten(timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while self.scheduledDrains.withLockedValue({ $0 }) > 0 {
            guard clock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// Has the writer write what `file` holds (called when the file had no drain job).
    func scheduleDrain(_ file: File) {
        self.scheduledDrains.withLockedValue { $0 += 1 }
        self.enqueueDrain(file)
    }

    /// One batch per turn, then back in line: a busy session cannot keep the writer from the others.
    private func enqueueDrain(_ file: File) {
        self.queue.async {
            if file.writeBatch() {
                self.enqueueDrain(file)
            } else {
                self.scheduledDrains.withLockedValue { $0 -= 1 }
            }
        }
    }

    /// One session's file: lines added on the session's event loop, written on the sink's queue.
    final class File: Sendable {
        private struct State {
            /// Escaped lines not yet taken by the writer.
            var pending = ByteBuffer()
            /// Taken by the writer and not yet written.
            var inFlight = 0
            var drainScheduled = false
            /// The footer is in `pending` (or written); nothing more is added.
            var ended = false
            /// The file cannot be created or written: lines are dropped.
            var failed = false
            /// Only the writer uses these two.
            var descriptor: Int32 = -1
            var opened = false
        }

        enum Added {
            case added(scheduleDrain: Bool)
            /// Not added: the file could not be created or written.
            case failed
            /// Not added: it would pass the limit; the footer was added instead and the file is ended.
            case overLimit(scheduleDrain: Bool)
        }

        let path: String
        let logger: Logger
        private let state = NIOLockedValueBox(State())

        init(path: String, logger: Logger) {
            self.path = path
            self.logger = logger
        }

        /// Adds a line of at most `maxLength` bytes unless that could take the bytes not yet written
        /// past `limit`.
        func add(maxLength: Int, limit: Int, _ write: (inout ByteBuffer) -> Void) -> Added {
            self.state.withLockedValue { state in
                guard !state.failed, !state.ended else { return .failed }
                let schedule = !state.drainScheduled
                state.drainScheduled = true
                if state.pending.readableBytes + state.inFlight + maxLength > limit {
                    state.pending.writeString(RecordFormat.footer)
                    state.ended = true
                    return .overLimit(scheduleDrain: schedule)
                }
                write(&state.pending)
                return .added(scheduleDrain: schedule)
            }
        }

        /// Adds the footer (unless the file already ended); returns whether a drain must be scheduled.
        /// A failed file is ended too, so that the writer finishes with it.
        func end() -> Bool {
            self.state.withLockedValue { state in
                guard !state.ended else { return false }
                state.ended = true
                if !state.failed { state.pending.writeString(RecordFormat.footer) }
                let schedule = !state.drainScheduled
                state.drainScheduled = true
                return schedule
            }
        }

        /// On the writer's queue: opens the file the first time and writes what is pending; returns
        /// whether to come back for more. With nothing pending, closes the file once it has ended.
        func writeBatch() -> Bool {
            let (batch, descriptor, opened, ended): (ByteBuffer?, Int32, Bool, Bool) = self.state.withLockedValue { state in
                if state.failed { state.pending.clear() }
                guard state.pending.readableBytes > 0 else {
                    state.drainScheduled = false
                    return (nil, state.descriptor, state.opened, state.ended)
                }
                let batch = state.pending
                state.pending = ByteBuffer()
                state.inFlight = batch.readableBytes
                return (batch, state.descriptor, state.opened, state.ended)
            }
            guard let batch else {
                if ended, descriptor >= 0 {
                    _ = close(descriptor)
                    self.state.withLockedValue { $0.descriptor = -1 }
                }
                return false
            }
            let file = opened ? descriptor : self.create()
            let error: Int32? = file >= 0 ? Self.writeAll(batch, to: file) : nil
            self.state.withLockedValue { state in
                state.inFlight = 0
                if error != nil {
                    state.failed = true
                    state.descriptor = -1
                }
            }
            if let error {
                _ = close(file)
                self.logger.warning(
                    "cannot write record file; this session is no longer recorded",
                    metadata: ["path": "\(self.path)", "error": "\(Self.describe(error))"]
                )
            }
            // Once more, to write what came meanwhile, or to close (a failed file drops what is pending).
            return true
        }

        /// Creates (or truncates) the file, readable by its owner only: it holds what users type.
        private func create() -> Int32 {
            let flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW
            var descriptor: Int32
            repeat {
                descriptor = open(self.path, flags, 0o600)
            } while descriptor < 0 && errno == EINTR
            let error = errno
            if descriptor >= 0 {
                // An older file of the same name keeps its mode through O_TRUNC; make it private too.
                _ = fchmod(descriptor, 0o600)
                self.logger.info("opening record file", metadata: ["path": "\(self.path)"])
            } else {
                self.logger.warning(
                    "cannot create record file; this session is not recorded",
                    metadata: ["path": "\(self.path)", "error": "\(Self.describe(error))"]
                )
            }
            self.state.withLockedValue { state in
                state.opened = true
                state.descriptor = descriptor
                if descriptor < 0 { state.failed = true }
            }
            return descriptor
        }

        /// Writes all of `buffer`; returns the errno of a failure.
        private static func writeAll(_ buffer: ByteBuffer, to descriptor: Int32) -> Int32? {
            buffer.withUnsafeReadableBytes { bytes -> Int32? in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    if written == 0 { return EIO }
                    offset += written
                }
                return nil
            }
        }

        private static func describe(_ error: Int32) -> String {
            String(cString: strerror(error)).lowercased()
        }
    }
}
