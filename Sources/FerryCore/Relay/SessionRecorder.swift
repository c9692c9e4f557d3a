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

    init(sink: RecordingSink, file: RecordingSink.File, started: NIODeadline) {
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
