import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// The `ferry` executable: `ferry connect URL` with pipes on standard input and output, and the
    /// exit status each ending gives.
    @Suite("stdio mode (the ferry executable)", .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"))
    struct StdioTests {
        @Test("bytes piped in come back out intact; closing standard input ends the session with 1000 and status 0", arguments: [0, 5, 1 << 20])
        func echo(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let connect = try StdioConnect([ClientRun.url(relay), "--log-level", "warning"])
                let pattern = BytePattern(seed: UInt64(size) &+ 5)
                let bytes = pattern.bytes(at: 0, count: size) + Array("--end--".utf8)
                try await connect.send(bytes)
                let echoed = try await connect.receive(count: bytes.count)
                #expect(echoed == bytes)
                // WebSocket has no half-close: standard input's EOF ends the session.
                try connect.closeInput()
                let status = await connect.waitForExit()
                #expect(status == ConnectExitStatus.ended.rawValue, "stderr: \(connect.errorOutput)")
                #expect(connect.outputEnded, "standard output is closed at the end")
            }
        }

        /// NIO reads a pipe whose writer is gone as soon as it is registered, auto-read or not: the
        /// bytes and the EOF came before the session's handlers, and were lost (the session then
        /// waited for ever for an EOF that had come).
        @Test("standard input already at its end when ferry connect starts (printf … | ferry connect): the bytes go, status 0", arguments: ["early bytes", ""])
        func inputEndedBeforeStart(text: String) async throws {
            let ferry = try #require(FerryExecutable.path)
            let backend = try await TestBackend.start(.sink(keepAtMost: 1024))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let folder = try TLSFiles.makeDirectory("stdio-early-eof")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let script = "printf '\(text)' | '\(ferry)' connect \(ClientRun.url(relay)) | cat; exit ${PIPESTATUS[1]}"
                let shell = try ChildProcess(executable: "/bin/bash", arguments: ["-c", script], logPath: folder + "/out")
                let status = await shell.waitForExit(timeout: .seconds(15))
                if status == nil { await shell.stop(grace: .seconds(1)) }
                #expect(status == ConnectExitStatus.ended.rawValue, "\(status == nil ? "still running after 15 s" : "")\n\(shell.output)")
                let report = try await backend.nextSinkReport(timeout: .seconds(10))
                #expect(String(buffer: report.kept) == text)
                #expect(report.sawEOF)
            }
        }

        @Test("the relay closes first with 1000 (its backend hung up): the data is written, then status 0")
        func relayClosesNormally() async throws {
            let greeting = "hello, then goodbye\n"
            let backend = try await TestBackend.start(.source(ByteBuffer(string: greeting)))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let connect = try StdioConnect([ClientRun.url(relay)])
                let status = await connect.waitForExit()
                #expect(status == 0, "stderr: \(connect.errorOutput)")
                #expect(String(decoding: try await connect.receive(count: greeting.utf8.count), as: UTF8.self) == greeting)
            }
        }

        @Test("the relay closes with 1008: status 1, and the code and reason on standard error")
        func relayClosesWithPolicyViolation() async throws {
            let server = try await ScriptedWebSocketServer.start(.upgradeThenClose(code: 1008, reason: "token expired"))
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.endedAbnormally.rawValue)
            #expect(connect.errorOutput.contains("ferry connect: the relay closed the session: 1008 token expired"), "\(connect.errorOutput)")
        }

        @Test("a refusal: status 5 and what the relay said, on one line")
        func refusal() async throws {
            let server = try await ScriptedWebSocketServer.start(.refuse(statusLine: "403 Forbidden", body: "token not valid for this route\nmore detail"))
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.refused.rawValue)
            #expect(connect.errorOutput.contains("ferry connect: the relay refused the session: 403 token not valid for this route\n"), "\(connect.errorOutput)")
        }

        @Test("nothing listening: status 3, naming the address")
        func couldNotConnect() async throws {
            let port = try await FreePort.on()
            let connect = try StdioConnect(["ws://127.0.0.1:\(port)/x"])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.couldNotConnect.rawValue)
            #expect(connect.errorOutput.contains("ferry connect: could not connect to 127.0.0.1:\(port)"), "\(connect.errorOutput)")
        }

        @Test("the server resets the connection instead of answering: status 3, in plain words (not NIO's)")
        func resetBeforeAnswer() async throws {
            let server = try await ScriptedWebSocketServer.start(.resetOnRequest)
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.couldNotConnect.rawValue)
            #expect(connect.errorOutput == "ferry connect: could not connect to 127.0.0.1:\(server.port): connection reset by peer\n", "\(connect.errorOutput)")
        }

        @Test("a 101 with the wrong Sec-WebSocket-Accept is not a session: status 3")
        func wrongAccept() async throws {
            let server = try await ScriptedWebSocketServer.start(.wrongAccept)
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.couldNotConnect.rawValue)
            #expect(connect.errorOutput.contains("Sec-WebSocket-Accept does not match"), "\(connect.errorOutput)")
        }

        @Test("a masked frame from the server is a protocol error: status 1")
        func maskedServerFrame() async throws {
            let server = try await ScriptedWebSocketServer.start(.upgradeThenMaskedFrame)
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            let status = await connect.waitForExit()
            #expect(status == ConnectExitStatus.endedAbnormally.rawValue)
            #expect(connect.errorOutput.contains("broke the WebSocket protocol"), "\(connect.errorOutput)")
            #expect(connect.receivedBytes.isEmpty, "the masked payload is not passed on")
        }

        @Test("keepalive: pings keep a quiet session to the relay alive (the relay answers them)")
        func pingsAnswered() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let connect = try StdioConnect([ClientRun.url(relay), "--ping-interval", "100ms", "--ping-timeout", "300ms"])
                try await Task.sleep(for: .seconds(1))
                try await connect.send(Array("still here\n".utf8))
                #expect(try await connect.receive(count: 11) == Array("still here\n".utf8))
                try connect.closeInput()
                #expect(await connect.waitForExit() == 0, "\(connect.errorOutput)")
            }
        }

        @Test("keepalive: a server that does not answer pings is given up on: status 1, saying so")
        func pingsUnanswered() async throws {
            let server = try await ScriptedWebSocketServer.start(.upgradeThenSilence)
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url, "--ping-interval", "200ms", "--ping-timeout", "300ms"])
            #expect(await connect.waitForExit(timeout: .seconds(5)) == ConnectExitStatus.endedAbnormally.rawValue)
            #expect(connect.errorOutput.contains("the relay did not answer a ping within 300 ms"), "\(connect.errorOutput)")
        }

        @Test("local EOF to a server that never answers the close: the session ends after the close timeout, status 1")
        func closeUnanswered() async throws {
            let server = try await ScriptedWebSocketServer.start(.upgradeThenSilence)
            defer { Task { await server.close() } }
            let connect = try StdioConnect([server.url])
            // The EOF must come after the upgrade (a busy machine can take longer than a fixed pause).
            _ = try #require(try await server.requests.next(timeout: .seconds(15)), "the upgrade request arrived")
            try await Task.sleep(for: .milliseconds(200))
            try connect.closeInput()
            #expect(await connect.waitForExit(timeout: .seconds(20)) == ConnectExitStatus.endedAbnormally.rawValue)
            #expect(connect.errorOutput.contains("did not answer the close"), "\(connect.errorOutput)")
        }

        @Test("--help: examples, every exit status, options under topic titles, every line within 80 columns")
        func help() async throws {
            let (status, output) = try await FerryBinary.run(["connect", "--help"])
            #expect(status == 0)
            for exit in ConnectExitStatus.allCases {
                #expect(output.contains("  \(exit.rawValue)  \(exit.meaning)\n"), "exit status \(exit.rawValue) is listed")
            }
            for title in ["USAGE:", "LOCAL END:", "CREDENTIALS AND HEADERS:", "TLS:", "TIMEOUTS, KEEPALIVE AND BUFFERS:", "LOGGING:"] {
                #expect(output.contains("\n\(title)"), "\(title)")
            }
            #expect(output.contains("no half-close"))
            for line in output.split(separator: "\n") {
                #expect(line.count <= 80, "longer than 80 columns: \(line)")
            }
        }

        @Test("bad flags name the flag, with status 2", arguments: [
            (["ftp://relay.example/x"], "URL ftp://relay.example/x: is not a ws:// or wss:// URL"),
            (["https://relay.example/x"], "is an HTTP URL; expected the same address with wss://"),
            (["wss://user:secret@relay.example/x"], "URL: holds user:password@"),
            (["ws://relay.example/x", "--token-in", "carrier-pigeon", "--token", "t"], "--token-in carrier-pigeon: unknown carrier"),
            (["ws://relay.example/x", "--token-in", "header"], "--token-in header: needs a token"),
            (["ws://relay.example/x", "--token", "a b"], "--token: has characters a subprotocol cannot carry"),
            (["ws://relay.example/x", "--header", "Upgrade: h2c"], "--header Upgrade: is written by the WebSocket handshake itself"),
            (["ws://relay.example/x", "--header", "no colon"], "--header: has no ':'"),
            (["ws://relay.example/x", "--ca", "/nonexistent/ca.pem"], "--ca /nonexistent/ca.pem: file not found"),
            (["ws://relay.example/x", "--insecure"], "--insecure: applies only to wss:// URLs"),
            (["wss://relay.example/x", "--client-cert", "/etc/hostname"], "--client-cert"),
            (["ws://relay.example/x", "--ping-interval", "soon"], "--ping-interval soon: not a duration"),
            (["ws://relay.example/x", "--buffer-size", "1MB"], "--buffer-size 1MB: MB could mean powers of 1000 or of 1024"),
            (["ws://relay.example/x", "--max-connections", "5"], "--max-connections 5: applies only with --listen"),
            (["ws://relay.example/x", "--listen", "127.0.0.1"], "--listen 127.0.0.1: port is missing"),
            (["ws://relay.example/x", "--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: cannot be read"),
        ])
        func badFlags(arguments: [String], message: String) async throws {
            let (status, output) = try await FerryBinary.run(["connect"] + arguments)
            #expect(status == ConnectExitStatus.badFlag.rawValue, "\(output)")
            #expect(output.contains(message), "\(output)")
            #expect(!output.contains("secret"), "a password is never repeated")
        }
    }
}
