// `--record PREFIX`: websockify's session recording format, its escaping (checked against Python's own
// `unicode_escape` when python3 is installed), the per-session writer's limits, and real sessions
// through a relay.

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Unit: record file format and writer")
struct RecordFormatTests {
    // MARK: Escaping

    @Test(
        "bytes are escaped as websockify escapes them",
        arguments: [
            ([0x00], #"\x00"#),
            ([0x27], #"\'"#),
            ([0x5C], #"\\"#),
            ([0x7F], #"\x7f"#),
            ([0x80], #"\x80"#),
            ([0xFF], #"\xff"#),
            ([0x09, 0x0A, 0x0D], #"\t\n\r"#),
            ([0x0B, 0x0C, 0x1F, 0x20, 0x7E], #"\x0b\x0c\x1f ~"#),
            ([0x5C, 0x27], #"\\\'"#),
            (Array("He said \"hi\", ok?".utf8), #"He said "hi", ok?"#),
            (Array("é".utf8), #"\xc3\xa9"#),
            ([], ""),
        ] as [([UInt8], String)]
    )
    func escapes(bytes: [UInt8], expected: String) {
        #expect(RecordFormat.escape(bytes) == expected)
    }

    /// Python's output for `bytes(range(256))` (`buf.decode('latin1').encode('unicode_escape')
    /// .decode('ascii').replace("'", "\\'")`), kept here so the check runs without python3.
    static let allBytesEscaped =
        #"\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"#
        + ##" !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f"##
        + #"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"#
        + #"\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf"#
        + #"\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"#
        + #"\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff"#

    @Test("every byte value escapes as in Python, and unescapes back")
    func allByteValues() throws {
        let bytes = (0...255).map(UInt8.init)
        #expect(RecordFormat.escape(bytes) == Self.allBytesEscaped)
        #expect(try RecordFile.unescape(Self.allBytesEscaped) == bytes)
    }

    static let python: String? = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("escaping matches Python's unicode_escape on every byte value and a long pseudo-random run", .enabled(if: RecordFormatTests.python != nil, "python3 is not installed"))
    func matchesPython() async throws {
        let bytes = (0...255).map(UInt8.init) + BytePattern(seed: 0x5EC0_4D).bytes(at: 0, count: 1024) + [0x5C, 0x27, 0x5C, 0x5C, 0x27, 0x27]
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let script = #"import sys; buf = bytes.fromhex(sys.argv[1]); sys.stdout.write(buf.decode('latin1').encode('unicode_escape').decode('ascii').replace("'", "\\'"))"#
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python!)
        process.arguments = ["-c", script, hex]
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-record-python-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        let exited = await Relay.eventually(timeout: .seconds(20)) { !process.isRunning }
        if !exited { process.terminate() }
        try #require(exited, "python3 did not finish")
        #expect(process.terminationStatus == 0)
        let python = try String(contentsOf: output, encoding: .ascii)
        #expect(python.count > bytes.count)
        #expect(RecordFormat.escape(bytes) == python)
    }

    // MARK: Lines

    @Test("a line is the direction marker, the milliseconds, the marker again and the escaped data")
    func lines() {
        var out = ByteBuffer()
        RecordFormat.appendLine(.toClient, milliseconds: 12, payload: ByteBuffer(bytes: Array("RFB 003.008\n".utf8)), to: &out)
        RecordFormat.appendLine(.fromClient, milliseconds: 40, payload: ByteBuffer(bytes: [0x01, 0x27, 0x00]), to: &out)
        RecordFormat.appendLine(.fromClient, milliseconds: 1_234_567, payload: ByteBuffer(), to: &out)
        #expect(String(buffer: out) == #"'{12{RFB 003.008\n',"# + "\n" + #"'}40}\x01\'\x00',"# + "\n" + "'}1234567}',\n")
    }

    @Test("the longest line fits the bound the writer's limit is checked with")
    func lineBound() {
        var out = ByteBuffer()
        let payload = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 1000))
        RecordFormat.appendLine(.toClient, milliseconds: .max, payload: payload, to: &out)
        #expect(out.readableBytes <= RecordFormat.maxLineLength(payloadCount: 1000))
    }

    // MARK: The writer

    @Test("a recorder writes the header, one line per chunk with its time, and the footer")
    func recorderWritesFile() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let sink = RecordingSink(prefix: folder + "/session")
            let started = NIODeadline.now()
            let recorder = sink.startSession(logger: Relay.logger, now: started)
            #expect(recorder.path == folder + "/session.1")
            recorder.backendData(ByteBuffer(string: "RFB 003.008\n"), now: started + .milliseconds(3))
            recorder.clientData(ByteBuffer(bytes: [0x00, 0x27, 0x5C, 0xFF]), now: started + .milliseconds(1500))
            recorder.clientData(ByteBuffer(), now: started + .milliseconds(1600))  // nothing to record
            recorder.backendData(ByteBuffer(string: "it's"), now: started + .microseconds(1_600_999))
            recorder.finish()
            recorder.finish()
            recorder.clientData(ByteBuffer(string: "late"), now: started + .seconds(2))
            let text = try await RecordFile.waitForEnd(folder + "/session.1")
            #expect(
                text == """
                    var VNC_frame_data = [
                    '{3{RFB 003.008\\n',
                    '}1500}\\x00\\'\\\\\\xff',
                    '{1600{it\\'s',
                    'EOF'];

                    """
            )
            #expect(RecordFile.mode(folder + "/session.1") == 0o600)
            #expect(await sink.waitUntilWritten(timeout: .seconds(5)))
        }
    }

    @Test("an existing file is truncated and made private")
    func existingFileReplaced() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let path = folder + "/s.1"
            try String(repeating: "old content\n", count: 100).write(toFile: path, atomically: false, encoding: .ascii)
            chmod(path, 0o644)
            let recorder = RecordingSink(prefix: folder + "/s").startSession(logger: Relay.logger)
            recorder.clientData(ByteBuffer(string: "new"))
            recorder.finish()
            let text = try await RecordFile.waitForEnd(path)
            #expect(!text.contains("old content"))
            #expect(try RecordFile.parse(text).fromClient == Array("new".utf8))
            #expect(RecordFile.mode(path) == 0o600)
        }
    }

    @Test("past the limit of unwritten bytes recording stops with one warning, and the file still ends properly")
    func overLimit() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let capture = AuthLogCapture()
            let sink = RecordingSink(prefix: folder + "/big", maxPendingBytes: 200)
            let started = NIODeadline.now()
            let recorder = sink.startSession(logger: capture.logger(), now: started)
            recorder.clientData(ByteBuffer(string: "small"), now: started + .milliseconds(1))
            // Up to 4 escaped bytes per byte: 100 bytes may need more than 200 on their own.
            recorder.backendData(ByteBuffer(repeating: UInt8(ascii: "x"), count: 100), now: started + .milliseconds(2))
            recorder.backendData(ByteBuffer(string: "after"), now: started + .milliseconds(3))
            recorder.clientData(ByteBuffer(repeating: UInt8(ascii: "y"), count: 100), now: started + .milliseconds(4))
            recorder.finish()
            let text = try await RecordFile.waitForEnd(folder + "/big.1")
            #expect(text == "var VNC_frame_data = [\n'}1}small',\n'EOF'];\n")
            #expect(await sink.waitUntilWritten(timeout: .seconds(5)))
            let warnings = capture.text.split(separator: "\n").filter { $0.contains(" warning ") }
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("recording of this session stops") == true)
            #expect(warnings.first?.contains("path=\(folder)/big.1") == true)
            #expect(!capture.text.contains("xxxx") && !capture.text.contains("small"))
        }
    }

    @Test("a file that cannot be created is reported once and the recorder goes on quietly")
    func cannotCreate() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let capture = AuthLogCapture()
            let sink = RecordingSink(prefix: folder + "/missing/session")
            let recorder = sink.startSession(logger: capture.logger())
            for index in 0..<50 {
                recorder.clientData(ByteBuffer(string: "chunk \(index)"))
                recorder.backendData(ByteBuffer(string: "chunk \(index)"))
                if index == 10 { #expect(await sink.waitUntilWritten(timeout: .seconds(5))) }
            }
            recorder.finish()
            #expect(await sink.waitUntilWritten(timeout: .seconds(5)))
            let warnings = capture.text.split(separator: "\n").filter { $0.contains(" warning ") }
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("cannot create record file") == true)
            #expect(!capture.text.contains("opening record file"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/missing"))
        }
    }

    @Test("a symbolic link in the file's place is not followed")
    func symlinkNotFollowed() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let target = folder + "/elsewhere"
            try "keep me\n".write(toFile: target, atomically: false, encoding: .ascii)
            try FileManager.default.createSymbolicLink(atPath: folder + "/s.1", withDestinationPath: target)
            let capture = AuthLogCapture()
            let sink = RecordingSink(prefix: folder + "/s")
            let recorder = sink.startSession(logger: capture.logger())
            recorder.clientData(ByteBuffer(string: "typed"))
            recorder.finish()
            #expect(await sink.waitUntilWritten(timeout: .seconds(5)))
            #expect(try String(contentsOfFile: target, encoding: .ascii) == "keep me\n")
            #expect(capture.text.contains("cannot create record file"))
        }
    }

    @Test("sessions are numbered from 1 per sink")
    func numbering() async throws {
        try await RecordFile.withTemporaryFolder { folder in
            let sink = RecordingSink(prefix: folder + "/n")
            let first = sink.startSession(logger: Relay.logger)
            let second = sink.startSession(logger: Relay.logger)
            #expect(first.path == folder + "/n.1")
            #expect(second.path == folder + "/n.2")
            second.finish()
            first.finish()
            _ = try await RecordFile.waitForEnd(folder + "/n.1")
            _ = try await RecordFile.waitForEnd(folder + "/n.2")
        }
    }
}

extension IntegrationTests {
    /// `--record` through a real relay.
    @Suite("Recording (--record)")
    struct Recording {
        /// Starts a relay with `--record prefix`, runs `body`, and stops the relay whatever happens.
        static func withRecordingRelay<T: Sendable>(
            prefix: String,
            backend: TestBackend,
            logger: Logger = Relay.logger,
            _ body: (RunningRelay) async throws -> T
        ) async throws -> T {
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: backend.target)],
                limits: Relay.testLimits(),
                recordPrefix: prefix
            )
            let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: logger)
            return try await Relay.serving(server, body)
        }

        /// Sends each message and waits for its echo, then closes the session with 1000.
        static func echoSession(_ relay: RunningRelay, messages: [[UInt8]]) async throws {
            let client = try await WSTestClient.upgrade(relay)
            for message in messages {
                try await client.send(binary: message)
                let echoed = try await client.receiveBytes(count: message.count, timeout: .seconds(10))
                #expect(Array(echoed.readableBytesView) == message)
            }
            let reply = try await client.close(code: 1000)
            #expect(reply.code == 1000)
            _ = try await client.waitForDisconnect()
        }

        static let messages: [[UInt8]] = [
            [0x00, 0x27, 0x5C, 0xFF],
            Array("it's a \\ test\r\n\t\"quoted\"".utf8),
            [0x7F, 0x80, 0x0B, 0x27, 0x27, 0x5C, 0x5C],
            (0...255).map(UInt8.init),
            BytePattern(seed: 17).bytes(at: 0, count: 70_000),
        ]

        @Test("a session is recorded in websockify's format: both directions, in order, escaped, then EOF")
        func sessionRecorded() async throws {
            try await RecordFile.withTemporaryFolder { folder in
                let backend = try await TestBackend.start(.echo)
                defer { Task { await backend.close() } }
                let capture = AuthLogCapture()
                let prefix = folder + "/session"
                let clock = ContinuousClock()
                let started = clock.now
                try await Self.withRecordingRelay(prefix: prefix, backend: backend, logger: capture.logger()) { relay in
                    try await Self.echoSession(relay, messages: Self.messages)
                    let text = try await RecordFile.waitForEnd(prefix + ".1")
                    let elapsed = started.duration(to: clock.now)
                    let file = try RecordFile.parse(text)
                    let sent = Self.messages.flatMap { $0 }
                    #expect(file.fromClient == sent, "client payload, in order, in '}T}' lines")
                    #expect(file.toClient == sent, "backend data, in order, in '{T{' lines")
                    #expect(file.lines.first?.direction == .fromClient)
                    // An echo cannot be recorded before what it echoes.
                    var fromClient = 0
                    var toClient = 0
                    for line in file.lines {
                        if line.direction == .fromClient { fromClient += line.data.count } else { toClient += line.data.count }
                        #expect(toClient <= fromClient)
                    }
                    let times = file.lines.map(\.milliseconds)
                    #expect(times == times.sorted(), "times never go back")
                    #expect((times.last ?? 0) <= elapsed.components.seconds * 1000 + 1000)
                    #expect(RecordFile.mode(prefix + ".1") == 0o600)
                    #expect(!FileManager.default.fileExists(atPath: prefix + ".2"))
                }
                #expect(capture.text.contains("opening record file"))
                #expect(capture.text.contains("path=\(prefix).1"))
                #expect(!capture.text.contains(" warning "))
                #expect(!capture.text.contains("quoted"), "no payload in the logs")
            }
        }

        @Test("two sessions are recorded to PREFIX.1 and PREFIX.2")
        func twoSessionsRecorded() async throws {
            try await RecordFile.withTemporaryFolder { folder in
                let backend = try await TestBackend.start(.echo)
                defer { Task { await backend.close() } }
                let prefix = folder + "/vnc"
                try await Self.withRecordingRelay(prefix: prefix, backend: backend) { relay in
                    try await Self.echoSession(relay, messages: [Array("first session".utf8)])
                    try await Self.echoSession(relay, messages: [Array("second".utf8), [0x00, 0xFF]])
                    let first = try RecordFile.parse(try await RecordFile.waitForEnd(prefix + ".1"))
                    let second = try RecordFile.parse(try await RecordFile.waitForEnd(prefix + ".2"))
                    #expect(first.fromClient == Array("first session".utf8))
                    #expect(first.toClient == Array("first session".utf8))
                    #expect(second.fromClient == Array("second".utf8) + [0x00, 0xFF])
                    #expect(second.toClient == Array("second".utf8) + [0x00, 0xFF])
                    #expect(await relay.server.environment.recording?.waitUntilWritten(timeout: .seconds(5)) == true)
                }
                let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
                #expect(names == ["vnc.1", "vnc.2"])
            }
        }

        @Test("a session whose record file cannot be created relays as usual")
        func uncreatableFileDoesNotDisturb() async throws {
            try await RecordFile.withTemporaryFolder { folder in
                let backend = try await TestBackend.start(.echo)
                defer { Task { await backend.close() } }
                let capture = AuthLogCapture()
                let recordFolder = folder + "/rec"
                try FileManager.default.createDirectory(atPath: recordFolder, withIntermediateDirectories: false)
                try await Self.withRecordingRelay(prefix: recordFolder + "/session", backend: backend, logger: capture.logger()) { relay in
                    // The folder was checked at start-up and is gone now.
                    try FileManager.default.removeItem(atPath: recordFolder)
                    try await Self.echoSession(relay, messages: Self.messages)
                    try await Self.echoSession(relay, messages: [Array("again".utf8)])
                    #expect(await relay.server.environment.recording?.waitUntilWritten(timeout: .seconds(5)) == true)
                }
                let warnings = capture.text.split(separator: "\n").filter { $0.contains(" warning ") }
                #expect(warnings.count == 2, "one warning per session: \(warnings)")
                #expect(warnings.allSatisfy { $0.contains("cannot create record file") })
                #expect(!FileManager.default.fileExists(atPath: recordFolder))
                #expect(capture.text.contains("session ended"))
            }
        }
    }
}

/// Reading record files back, the way a player would.
enum RecordFile {
    enum Direction: Equatable {
        case toClient
        case fromClient
    }

    struct Line {
        var direction: Direction
        var milliseconds: Int64
        var data: [UInt8]
    }

    struct Parsed {
        var lines: [Line]
        var toClient: [UInt8] { self.lines.filter { $0.direction == .toClient }.flatMap(\.data) }
        var fromClient: [UInt8] { self.lines.filter { $0.direction == .fromClient }.flatMap(\.data) }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Checks every line: the header, `'{T{DATA',` / `'}T}DATA',` lines with correctly escaped data,
    /// and the footer last.
    static func parse(_ text: String) throws -> Parsed {
        guard text.hasSuffix("\n") else { throw Malformed(description: "no newline at the end") }
        let rows = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard rows.first == "var VNC_frame_data = [" else { throw Malformed(description: "header: \(rows.first ?? "")") }
        guard rows.count >= 2, rows.last == "'EOF'];" else { throw Malformed(description: "footer: \(rows.last ?? "")") }
        var lines: [Line] = []
        for row in rows.dropFirst().dropLast() {
            let bytes = Array(row.utf8)
            guard bytes.count >= 6, bytes.first == UInt8(ascii: "'"), bytes.suffix(2) == [UInt8(ascii: "'"), UInt8(ascii: ",")] else {
                throw Malformed(description: "line not quoted: \(row.prefix(80))")
            }
            let marker = bytes[1]
            let direction: Direction
            switch marker {
            case UInt8(ascii: "{"): direction = .toClient
            case UInt8(ascii: "}"): direction = .fromClient
            default: throw Malformed(description: "no direction: \(row.prefix(80))")
            }
            guard let close = bytes[2...].firstIndex(of: marker), close > 2,
                bytes[2..<close].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let milliseconds = Int64(String(decoding: bytes[2..<close], as: UTF8.self))
            else { throw Malformed(description: "no time: \(row.prefix(80))") }
            let data = try self.unescape(String(decoding: bytes[(close + 1)..<(bytes.count - 2)], as: UTF8.self))
            lines.append(Line(direction: direction, milliseconds: milliseconds, data: data))
        }
        return Parsed(lines: lines)
    }

    /// The bytes a JavaScript string literal of this escaped text holds (as latin1), refusing anything
    /// websockify would not write: characters outside printable ASCII, an unescaped quote, other escapes.
    static func unescape(_ text: String) throws -> [UInt8] {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        var index = 0
        func hexValue(_ byte: UInt8) throws -> UInt8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            default: throw Malformed(description: "not lower-case hex: \(byte)")
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            guard (0x20...0x7E).contains(byte), byte != UInt8(ascii: "'") else {
                throw Malformed(description: "raw byte \(byte) at \(index)")
            }
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { throw Malformed(description: "lone backslash at the end") }
            switch bytes[index + 1] {
            case UInt8(ascii: "\\"): result.append(0x5C)
            case UInt8(ascii: "'"): result.append(0x27)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "x"):
                guard index + 3 < bytes.count else { throw Malformed(description: "short \\x escape") }
                let value = try hexValue(bytes[index + 2]) << 4 | hexValue(bytes[index + 3])
                // These have their own short escapes, or need none.
                guard ![0x09, 0x0A, 0x0D].contains(value), !(0x20...0x7E).contains(value) else {
                    throw Malformed(description: "\\x escape of \(value)")
                }
                result.append(value)
                index += 2
            default:
                throw Malformed(description: "unknown escape \\\(Character(Unicode.Scalar(bytes[index + 1])))")
            }
            index += 2
        }
        return result
    }

    /// Polls until the file ends with the footer; returns its text. Throws after `timeout`.
    static func waitForEnd(_ path: String, timeout: Duration = .seconds(10)) async throws -> String {
        var text = ""
        let ended = await Relay.eventually(timeout: timeout) {
            text = (FileManager.default.contents(atPath: path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return text.hasSuffix(RecordFormat.footer)
        }
        guard ended else { throw IntegrationTimeout(what: "\(path) to end with 'EOF'];") }
        return text
    }

    /// The file's permission bits, or nil if it does not exist.
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Runs `body` with a new empty folder, removed afterwards.
    static func withTemporaryFolder<T>(_ body: (String) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-record-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await body(folder)
    }
}
