// websockify's server features that Ferry implements on other branches: listening on a Unix socket,
// servers that end by themselves (--idle-timeout, --timeout, --run-once) and session recording. Each
// is driven through the `websockify` link with websockify's own arguments, as in WebsockifyDropInTests.

import Foundation
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

extension WebsockifyProcessTests {
    @Suite("Server features: Unix listener, lifetime, recording", .enabled(if: WebsockifyProcessTests.ferryBuilt, "the ferry executable is not built (swift build)"), .timeLimit(.minutes(1)))
    struct ServerFeatures {
        // MARK: --unix-listen

        @Test("--unix-listen=FILE --unix-listen-mode=660: the socket has mode 660 and carries a session")
        func unixListen() async throws {
            let folder = try WebsockifyFolder("unix-listen")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let socket = folder.file("ws.sock")
            try await folder.run(["--unix-listen=\(socket)", "--unix-listen-mode=660", backend.hostPort], listening: nil) { ferry in
                let up = await Relay.eventually(timeout: .seconds(15)) { access(socket, F_OK) == 0 || !ferry.isRunning }
                let status = await ferry.waitForExit(timeout: .milliseconds(200))
                #expect(ferry.runningAs?.contains("--listen unix:\(socket),mode=660") == true, "\(ferry.output)")
                try #require(up && status == nil && access(socket, F_OK) == 0, "no socket at \(socket) (exit status \(String(describing: status))):\n\(ferry.output)")
                var info = stat()
                try #require(stat(socket, &info) == 0)
                #expect(info.st_mode & S_IFMT == S_IFSOCK)
                #expect(info.st_mode & 0o777 == 0o660, "mode \(String(info.st_mode & 0o777, radix: 8))")

                let client = try await WSTestClient.open(to: try SocketAddress(unixDomainSocketPath: socket))
                try await client.sendHandshake(path: "/websockify", host: "localhost")
                _ = try await client.readResponse(timeout: .seconds(10))
                try client.checkUpgraded()
                try await DropInEcho.check(client)
                #expect(backend.accepted == 1)
            }
        }

        // MARK: Lifetime

        @Test("--idle-timeout 1: with no session the server exits 0 by itself")
        func idleTimeoutExits() async throws {
            let folder = try WebsockifyFolder("idle-exit")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--idle-timeout", "1", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--exit-when-idle 1s") == true, "\(ferry.output)")
                let status = await ferry.waitForExit(timeout: .seconds(6))
                #expect(status == 0, "still running (or failed) 6 s after start with --idle-timeout 1:\n\(ferry.output)")
            }
        }

        @Test("--idle-timeout 1: an open session keeps the server; it exits once the session ends")
        func idleTimeoutWaitsForSession() async throws {
            let folder = try WebsockifyFolder("idle-session")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--idle-timeout", "1", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                let client = try await DropInClient.upgrade(try DropInClient.local(port))
                // A quiet session is still a session: the server must not exit under it.
                try await Task.sleep(for: .milliseconds(2500))
                #expect(ferry.isRunning, "exited while a session was open:\n\(ferry.output)")
                try await DropInEcho.check(client)
                let status = await ferry.waitForExit(timeout: .seconds(6))
                #expect(status == 0, "did not exit after the last session ended:\n\(ferry.output)")
            }
        }

        @Test("--timeout 1: the listener closes after about 1 s; the open session goes on; the process exits when it ends")
        func acceptTimeout() async throws {
            let folder = try WebsockifyFolder("timeout")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--timeout", "1", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--accept-for 1s") == true, "\(ferry.output)")
                let address = try DropInClient.local(port)
                let client = try await DropInClient.upgrade(address)
                try await Task.sleep(for: .milliseconds(1500))
                #expect(await Self.isRefused(address), "a new connection was still served 1.5 s after start with --timeout 1")
                #expect(ferry.isRunning, "exited while a session was open:\n\(ferry.output)")
                try await DropInEcho.check(client)
                let status = await ferry.waitForExit(timeout: .seconds(5))
                #expect(status == 0, "did not exit after its session ended:\n\(ferry.output)")
            }
        }

        @Test("--run-once: a second connection is refused; the process exits when the first session ends")
        func runOnce() async throws {
            let folder = try WebsockifyFolder("run-once")
            defer { folder.remove() }
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            try await folder.run(["--run-once", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                let address = try DropInClient.local(port)
                let first = try await DropInClient.upgrade(address)
                #expect(await Self.isRefused(address), "a second session was served with --run-once")
                #expect(backend.accepted == 1)
                try await DropInEcho.check(first)
                let status = await ferry.waitForExit(timeout: .seconds(5))
                #expect(status == 0, "did not exit after the one session ended:\n\(ferry.output)")
            }
        }

        /// True if a new WebSocket client gets no 101: the connection is refused, closed, or answered
        /// with something else, or not answered within 2 s.
        static func isRefused(_ address: SocketAddress) async -> Bool {
            guard let client = try? await WSTestClient.open(to: address) else { return true }
            defer { Task { await client.shutdown() } }
            do {
                try await client.sendHandshake(path: "/websockify", host: PlainHTTP.hostHeader(address))
                return try await client.readResponse(timeout: .seconds(2)).status != 101
            } catch {
                return true
            }
        }

        // MARK: --record

        @Test("--record PREFIX: PREFIX.1 in websockify's format")
        func record() async throws {
            let folder = try WebsockifyFolder("record")
            defer { folder.remove() }
            _ = try folder.makeDirectory("rec")
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let port = try await FreePort.on()
            let prefix = folder.file("rec/session")
            try await folder.run(["--record", "rec/session", "127.0.0.1:\(port)", backend.hostPort], listening: "127.0.0.1:\(port)") { ferry in
                #expect(ferry.runningAs?.contains("--record \(prefix)") == true, "\(ferry.output)")
                let client = try await DropInClient.upgrade(try DropInClient.local(port))
                #expect(try await TLSEcho.roundTrip(client, "hello") == "hello")
                #expect(try await TLSEcho.roundTrip(client, "it's") == "it's")
                try await client.send(binary: [0x00, 0x0A, 0xFF])
                let bytes = try await client.receiveBytes(count: 3, timeout: .seconds(5))
                #expect(Array(bytes.readableBytesView) == [0x00, 0x0A, 0xFF])
                #expect(try await client.close(code: 1000).code == 1000)
                await client.shutdown()

                let path = prefix + ".1"
                let finished = await Relay.eventually(timeout: .seconds(5)) {
                    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").hasSuffix("'EOF'];\n")
                }
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                try #require(finished, "\(path) is missing or unfinished: \(text.debugDescription)\n\(ferry.output)")
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
                #expect(lines.first == "var VNC_frame_data = [", "\(lines)")
                #expect(lines.last == "'EOF'];", "\(lines)")
                // '{T{DATA', to the client; '}T}DATA', from the client; T in milliseconds since the start.
                let frames = lines.dropFirst().dropLast()
                for line in frames {
                    #expect(line.wholeMatch(of: #/'[{}]\d+[{}].*',/#) != nil, "not a frame line: \(line)")
                }
                func has(_ direction: Character, _ data: String) -> Bool {
                    let close: Character = direction == "{" ? "{" : "}"
                    return frames.contains { $0.hasPrefix("'\(direction)") && $0.hasSuffix("\(close)\(data)',") }
                }
                #expect(has("}", "hello") && has("{", "hello"), "\(lines)")
                #expect(has("}", #"it\'s"#) && has("{", #"it\'s"#), "quotes are escaped as websockify does: \(lines)")
                #expect(has("}", #"\x00\n\xff"#) && has("{", #"\x00\n\xff"#), "bytes are escaped as websockify does: \(lines)")
            }
        }
    }
}
