import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension ClientTests {
    /// `ferry connect --listen` in this process, in front of an in-process relay and an echo backend.
    @Suite("--listen (real sockets)")
    struct ListenTests {
        /// Sends `size` bytes of a pattern and a sentinel through one local connection and checks the
        /// echo byte for byte; then ends the local side and expects the session to end with 1000.
        static func echoThrough(_ address: SocketAddress, size: Int, seed: UInt64) async throws {
            let client = try await LocalTestClient.connect(to: address)
            let pattern = BytePattern(seed: seed)
            let sentinel = ByteBuffer(string: "--end--")
            try await client.send(pattern.buffer(at: 0, count: size))
            try await client.send(sentinel)
            let echoed = try await client.receive(count: size + sentinel.readableBytes, timeout: .seconds(60))
            try #require(echoed.readableBytes == size + sentinel.readableBytes, "the local connection ended after \(echoed.readableBytes) bytes")
            #expect(pattern.matches(try #require(echoed.getSlice(at: echoed.readerIndex, length: size)), at: 0))
            #expect(echoed.getString(at: echoed.readerIndex + size, length: sentinel.readableBytes) == "--end--")
            // WebSocket has no half-close: the local EOF ends the session, and the local side is closed.
            try await client.finishSending()
            #expect(await client.waitForEnd(), "the local connection ends after its EOF")
            await client.close()
        }

        @Test("TCP: bytes go both ways intact", arguments: [0, 1, 125, 126, 65_536, 3 << 20])
        func tcpEcho(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    try await Self.echoThrough(addresses[0], size: size, seed: UInt64(size) &+ 17)
                }
            }
        }

        @Test("TCP: a 64 MiB stream arrives intact, with the default 256 KiB buffers")
        func largeStream() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    try await Self.echoThrough(addresses[0], size: 64 << 20, seed: 64)
                }
            }
        }

        @Test("Unix socket: bytes go both ways intact, and the socket gets its mode", arguments: [0, 4096, 2 << 20])
        func unixEcho(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("fc-\(UUID().uuidString.prefix(8)).sock").path
            defer { unlink(path) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let configuration = try ClientRun.configuration(ClientRun.url(relay)) { $0.listeners = [ListenAddress(unixPath: path, mode: 0o600)] }
                try await ClientRun.listening(configuration) { _, _ in
                    let attributes = try FileManager.default.attributesOfItem(atPath: path)
                    #expect((attributes[.posixPermissions] as? Int) == 0o600)
                    try await Self.echoThrough(try SocketAddress(unixDomainSocketPath: path), size: size, seed: UInt64(size) &+ 3)
                }
            }
        }

        @Test("50 local connections at once each get their own session, bytes intact")
        func concurrentConnections() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { listener, addresses in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for index in 0..<50 {
                            group.addTask { try await Self.echoThrough(addresses[0], size: 64 * 1024 + index, seed: UInt64(index)) }
                        }
                        try await group.waitForAll()
                    }
                    #expect(backend.accepted == 50, "one backend connection per local connection")
                    #expect(await Relay.eventually { listener.openSessions == 0 }, "every session ended")
                }
            }
        }

        @Test("--max-connections: a connection over the limit is closed at accept; the others go on")
        func maxConnections() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let configuration = try ClientRun.configuration(ClientRun.url(relay)) { $0.maxConnections = 2 }
                try await ClientRun.listening(configuration) { listener, addresses in
                    let first = try await LocalTestClient.connect(to: addresses[0])
                    let second = try await LocalTestClient.connect(to: addresses[0])
                    #expect(await Relay.eventually { listener.openSessions == 2 })
                    let third = try await LocalTestClient.connect(to: addresses[0])
                    #expect(await third.waitForEnd(timeout: .seconds(5)), "the third connection is closed")
                    try await first.send(ByteBuffer(string: "still here"))
                    #expect(String(buffer: try await first.receive(count: 10)) == "still here")
                    for client in [first, second, third] { await client.close() }
                    #expect(await Relay.eventually { listener.openSessions == 0 })
                }
            }
        }

        @Test("a local reader that stalls stalls the backend's writes (bounded buffers); all bytes arrive once it reads")
        func backpressureToLocal() async throws {
            let total = 64 * 1024 * 1024
            let pattern = BytePattern(seed: 21)
            let backend = try await TestBackend.start(.flood(total: total, pattern: pattern))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    let client = try await LocalTestClient.connect(to: addresses[0], paused: true)
                    let (stalled, samples) = try await IntegrationTests.Lifecycle.waitForPlateau { backend.bytesWritten }
                    let plateau = samples.last ?? 0
                    print("ferry connect backpressure relay->local: stalled at \(plateau / 1024) KiB; samples (KiB): \(samples.map { $0 / 1024 })")
                    #expect(stalled, "the backend's writes never stalled: \(samples.map { $0 / 1024 }) KiB")
                    #expect(plateau < total / 2, "\(plateau / 1024) KiB taken from the backend for a local reader that reads nothing")
                    try await client.resumeReading()
                    let received = try await client.receive(count: total, timeout: .seconds(60))
                    #expect(received.readableBytes == total)
                    #expect(pattern.matches(received, at: 0))
                    await client.close()
                }
            }
        }

        @Test("a backend that stalls stalls the local writer (bounded buffers); all bytes arrive once it reads")
        func backpressureFromLocal() async throws {
            let total = 64 * 1024 * 1024
            let pattern = BytePattern(seed: 22)
            let backend = try await TestBackend.start(.sink(keepAtMost: 64, paused: true))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    let client = try await LocalTestClient.connect(to: addresses[0], sendBufferSize: 64 * 1024)
                    let written = NIOLockedValueBox(0)
                    let writer = Task {
                        let chunk = 64 * 1024
                        var offset = 0
                        while offset < total {
                            do {
                                try await client.send(pattern.buffer(at: offset, count: chunk))
                            } catch {
                                return
                            }
                            offset += chunk
                            written.withLockedValue { $0 = offset }
                        }
                    }
                    let (stalled, samples) = try await IntegrationTests.Lifecycle.waitForPlateau { written.withLockedValue { $0 } }
                    let plateau = samples.last ?? 0
                    print("ferry connect backpressure local->relay: stalled at \(plateau / 1024) KiB; samples (KiB): \(samples.map { $0 / 1024 })")
                    #expect(stalled, "the local writes never stalled: \(samples.map { $0 / 1024 }) KiB")
                    #expect(plateau < total / 2, "\(plateau / 1024) KiB taken from a local writer whose backend reads nothing")
                    try await backend.resumeReading()
                    let finished = await Relay.eventually(timeout: .seconds(30)) { written.withLockedValue { $0 } == total }
                    #expect(finished, "writes did not resume: \(written.withLockedValue { $0 } / 1024) KiB of \(total / 1024)")
                    if !finished { await client.close() }
                    _ = await writer.result
                    try await client.finishSending()
                    let report = try await backend.nextSinkReport(timeout: .seconds(20))
                    #expect(report.byteCount == total, "everything read before the local EOF reaches the backend")
                    #expect(pattern.matches(report.kept, at: 0))
                    await client.close()
                }
            }
        }

        @Test("a local client that writes and half-closes before the WebSocket is open: the bytes and the end still go")
        func earlyWriteAndEOF() async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 1024))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    let client = try await LocalTestClient.connect(to: addresses[0])
                    try await client.send(ByteBuffer(string: "said early"))
                    try await client.finishSending()
                    let report = try await backend.nextSinkReport(timeout: .seconds(10))
                    #expect(String(buffer: report.kept) == "said early")
                    #expect(report.sawEOF)
                    #expect(await client.waitForEnd(), "the local connection ends with the session")
                    await client.close()
                }
            }
        }

        @Test("the relay's close (its backend hung up) reaches the local side after the data")
        func relayClosesFirst() async throws {
            let greeting = ByteBuffer(string: "hello from the backend\n")
            let backend = try await TestBackend.start(.source(greeting))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                try await ClientRun.listening(try ClientRun.configuration(ClientRun.url(relay))) { _, addresses in
                    let client = try await LocalTestClient.connect(to: addresses[0])
                    #expect(await client.waitForEnd(), "the local connection is closed once the relay has closed")
                    #expect(client.received == greeting)
                    await client.close()
                }
            }
        }

        @Test("a relay that refuses: the local connection is closed, the listener goes on")
        func refusedSession() async throws {
            let server = try await ScriptedWebSocketServer.start(.refuse(statusLine: "403 Forbidden", body: "no\n"))
            defer { Task { await server.close() } }
            try await ClientRun.listening(try ClientRun.configuration(server.url)) { listener, addresses in
                for _ in 0..<2 {
                    let client = try await LocalTestClient.connect(to: addresses[0])
                    #expect(await client.waitForEnd())
                    await client.close()
                }
                #expect(await Relay.eventually { listener.openSessions == 0 })
            }
        }
    }
}

extension ClientTests {
    /// `ferry connect URL --listen …` as a process: it listens, relays, and stops on SIGTERM.
    @Suite("--listen (the ferry executable)", .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"))
    struct ListenExecutableTests {
        @Test("it says where it listens, relays each connection, and stops on SIGTERM with status 0")
        func listensAndStops() async throws {
            let executable = try #require(FerryExecutable.path)
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let directory = try TLSFiles.makeDirectory("connect-listen")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let port = try await FreePort.on()
                let process = try ChildProcess(executable: executable, arguments: ["connect", ClientRun.url(relay), "--listen", "127.0.0.1:\(port)"], logPath: directory + "/out.log")
                do {
                    #expect(await process.waitForOutput("listening listen=127.0.0.1:\(port)"), "\(process.output)")
                    try await ListenTests.echoThrough(try SocketAddress(ipAddress: "127.0.0.1", port: port), size: 100_000, seed: 31)
                    #expect(await process.waitForOutput("session ended: the relay closed the session: 1000"), "\(process.output)")
                    kill(process.pid, SIGTERM)
                    #expect(await process.waitForExit(timeout: .seconds(5)) == 0, "\(process.output)")
                } catch {
                    await process.stop(signal: SIGKILL)
                    throw error
                }
            }
        }

        @Test("an address in use names the flag and the address, with status 2")
        func addressInUse() async throws {
            let taken = try await TestBackend.start(.echo)
            defer { Task { await taken.close() } }
            let port = taken.address.port!
            let (status, output) = try await FerryBinary.run(["connect", "ws://127.0.0.1:1/", "--listen", "127.0.0.1:\(port)"])
            #expect(status == ConnectExitStatus.badFlag.rawValue, "\(output)")
            #expect(output.contains("--listen 127.0.0.1:\(port):"), "\(output)")
        }
    }
}
