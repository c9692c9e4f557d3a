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

/// websockify's `--record` file format, which noVNC's playback tools read: a JavaScript array of
/// strings, one per chunk, then `'EOF'`.
///
/// ```
/// var VNC_frame_data = [
/// '{12{RFB 003.008\n',
/// '}40}\x01',
/// 'EOF'];
/// ```
///
/// `'{T{DATA',` is a chunk the relay sent to the client (backend data), `'}T}DATA',` one it received
/// from the client; `T` is whole milliseconds since the session started. `DATA` is escaped as
/// websockify does it, `buf.decode('latin1').encode('unicode_escape').decode('ascii').replace("'", "\\'")`:
/// printable ASCII as is except `\` → `\\` and `'` → `\'`; tab, newline and carriage return as `\t`,
/// `\n`, `\r`; every other byte as `\xNN` (lower-case hex).
///
/// Ferry streams payloads instead of collecting messages, so a line is one chunk as relayed (one read
/// from the backend, or one piece of a client frame's payload), not necessarily one WebSocket message.
/// Playback does not depend on message boundaries.
enum RecordFormat {
    static let header = "var VNC_frame_data = [\n"
    static let footer = "'EOF'];\n"

    enum Direction {
        /// Backend data the relay sends to the client: `'{T{DATA',`.
        case toClient
        /// Client payload the relay passes to the backend: `'}T}DATA',`.
        case fromClient

        var marker: UInt8 {
            switch self {
            case .toClient: return UInt8(ascii: "{")
            case .fromClient: return UInt8(ascii: "}")
            }
        }
    }

    /// A line's length besides its data: quote, two markers, up to 20 digits, quote, comma, newline.
    static let lineOverhead = 26

    /// The longest a line for `count` payload bytes can be (every byte as `\xNN`).
    static func maxLineLength(payloadCount count: Int) -> Int {
        Self.lineOverhead + 4 * count
    }

    /// Appends `'{T{DATA',\n` (or `'}T}DATA',\n`) for `payload`'s readable bytes.
    static func appendLine(_ direction: Direction, milliseconds: Int64, payload: ByteBuffer, to out: inout ByteBuffer) {
        out.reserveCapacity(minimumWritableBytes: Self.maxLineLength(payloadCount: payload.readableBytes))
        out.writeInteger(UInt8(ascii: "'"))
        out.writeInteger(direction.marker)
        out.writeString(String(max(0, milliseconds)))
        out.writeInteger(direction.marker)
        payload.withUnsafeReadableBytes { source in
            guard source.count > 0 else { return }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 * source.count) { destination in
                Self.escape(source, into: destination)
            }
        }
        out.writeString("',\n")
    }

    /// `bytes` escaped as websockify escapes them (see the type's documentation).
    static func escape(_ bytes: [UInt8]) -> String {
        var out = ByteBuffer()
        bytes.withUnsafeBytes { source in
            guard source.count > 0 else { return }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 * source.count) { destination in
                Self.escape(source, into: destination)
            }
        }
        return String(buffer: out)
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// Writes the escaped form of `source` to `destination` (which has room for 4 bytes per byte) and
    /// returns how many bytes were written.
    private static func escape(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        precondition(destination.count >= 4 * source.count)
        let hex = Self.hexDigits.utf8Start
        var index = 0
        for byte in source {
            switch byte {
            case UInt8(ascii: "\\"), UInt8(ascii: "'"):
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = byte
                index += 2
            case 0x20...0x7E:
                destination[index] = byte
                index += 1
            case 0x09, 0x0A, 0x0D:
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = byte == 0x09 ? UInt8(ascii: "t") : byte == 0x0A ? UInt8(ascii: "n") : UInt8(ascii: "r")
                index += 2
            default:
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = UInt8(ascii: "x")
                destination[index + 2] = hex[Int(byte >> 4)]
                destination[index + 3] = hex[Int(byte & 0x0F)]
                index += 4
            }
        }
        return index
    }
}

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
    fileprivate func scheduleDrain(_ file: File) {
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
    fileprivate final class File: Sendable {
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

/// Records one session (`--record`). Lives on the session's event loop, called by the ``Splice``.
///
/// Each chunk is escaped on the loop straight into the file's pending bytes and written later by the
/// ``RecordingSink``'s writer. If the writer falls behind by more than the sink's limit (a disk slower
/// than the session), recording of this session stops there: one warning is logged, the file is ended
/// with `'EOF'];` so it stays readable, and the session itself goes on. A file that cannot be created
/// is reported once by the writer and the session's chunks are dropped from then on. Never logs payload.
final class SessionRecorder {
    private let sink: RecordingSink
    private let file: RecordingSink.File
    private let started: NIODeadline
    private var stopped = false

    fileprivate init(sink: RecordingSink, file: RecordingSink.File, started: NIODeadline) {
        self.sink = sink
        self.file = file
        self.started = started
        self.add(maxLength: RecordFormat.header.utf8.count) { $0.writeString(RecordFormat.header) }
    }

    deinit {
        // A session that never got to its end (a failed upgrade) still closes its file.
        self.finish()
    }

    /// The file's path, `PREFIX.N`.
    var path: String { self.file.path }

    /// Client payload on its way to the backend.
    func clientData(_ buffer: ByteBuffer, now: NIODeadline = .now()) {
        self.record(.fromClient, buffer, now: now)
    }

    /// Backend data on its way to the client.
    func backendData(_ buffer: ByteBuffer, now: NIODeadline = .now()) {
        self.record(.toClient, buffer, now: now)
    }

    /// The session ended: the file gets its footer and is closed once written. Safe to call again.
    func finish() {
        guard !self.stopped else { return }
        self.stopped = true
        if self.file.end() { self.sink.scheduleDrain(self.file) }
    }

    private func record(_ direction: RecordFormat.Direction, _ buffer: ByteBuffer, now: NIODeadline) {
        guard !self.stopped, buffer.readableBytes > 0 else { return }
        let milliseconds = (now - self.started).nanoseconds / 1_000_000
        self.add(maxLength: RecordFormat.maxLineLength(payloadCount: buffer.readableBytes)) { out in
            RecordFormat.appendLine(direction, milliseconds: milliseconds, payload: buffer, to: &out)
        }
    }

    private func add(maxLength: Int, _ write: (inout ByteBuffer) -> Void) {
        switch self.file.add(maxLength: maxLength, limit: self.sink.maxPendingBytes, write) {
        case .added(let schedule):
            if schedule { self.sink.scheduleDrain(self.file) }
        case .failed:
            // The writer already said why, once; the session goes on unrecorded.
            self.stopped = true
        case .overLimit(let schedule):
            self.stopped = true
            self.file.logger.warning(
                "record file falls behind; recording of this session stops here",
                metadata: ["path": "\(self.file.path)", "limit_bytes": "\(self.sink.maxPendingBytes)"]
            )
            if schedule { self.sink.scheduleDrain(self.file) }
        }
    }
}

@available(*, unavailable)
extension SessionRecorder: Sendable {}
