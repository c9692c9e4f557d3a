import Foundation
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
    /// Stopping `ferry connect --listen`: SIGTERM closes every session with 1001 before exiting, so
    /// the relay sees a client that left rather than a lost connection.
    @Suite("--listen stops gracefully")
    struct DrainTests {
        @Test("drain: each session closes with 1001, its local side gets what was echoed and then EOF")
        func drainClosesSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let log = AuthLogCapture()
            try await ProductionRelay.with(routes: [Route(path: "/", target: backend.target)], logger: log.logger()) { relay in
                let dialer = try WebSocketDialer(configuration: try ClientRun.configuration(ClientRun.url(relay)))
                let (listener, addresses) = try await ConnectListener.start(dialer: dialer, group: IntegrationLoops.group, logger: ClientRun.logger)
                var clients: [LocalTestClient] = []
                for index in 0..<3 {
                    let client = try await LocalTestClient.connect(to: addresses[0])
                    try await client.send(ByteBuffer(string: "hello \(index)"))
                    let echoed = try await client.receive(count: 7)
                    #expect(echoed.getString(at: echoed.readerIndex, length: 7) == "hello \(index)")
                    clients.append(client)
                }
                #expect(listener.openSessions == 3)

                let left = await listener.drain(within: .seconds(5))
                #expect(left == 0, "every session ended within the drain")
                for client in clients {
                    #expect(await client.waitForEnd(), "the local connection is closed after the session's close")
                    await client.close()
                }
                let closedBy1001 = await Relay.eventually(timeout: .seconds(5)) {
                    log.text.components(separatedBy: "close_code=1001").count - 1 == 3
                }
                #expect(closedBy1001, "the relay logged three sessions closed with 1001; its log: \(log.text.suffix(2000))")
                // The listener no longer accepts.
                await #expect(throws: (any Error).self) { _ = try await LocalTestClient.connect(to: addresses[0]) }
            }
        }

        @Test("the ferry executable: SIGTERM drains the open session with 1001 and exits 0", .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"))
        func sigtermDrains() async throws {
            let executable = try #require(FerryExecutable.path)
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let log = AuthLogCapture()
            try await ProductionRelay.with(routes: [Route(path: "/", target: backend.target)], logger: log.logger()) { relay in
                let directory = try TLSFiles.makeDirectory("connect-drain")
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let port = try await FreePort.on()
                let process = try ChildProcess(executable: executable, arguments: ["connect", ClientRun.url(relay), "--listen", "127.0.0.1:\(port)"], logPath: directory + "/out.log")
                do {
                    #expect(await process.waitForOutput("listening listen=127.0.0.1:\(port)"), "\(process.output)")
                    let client = try await LocalTestClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port))
                    try await client.send(ByteBuffer(string: "ping"))
                    let echoed = try await client.receive(count: 4)
                    #expect(echoed.getString(at: echoed.readerIndex, length: 4) == "ping")

                    kill(process.pid, SIGTERM)
                    #expect(await client.waitForEnd(), "the local connection is closed by the drain")
                    #expect(await process.waitForExit(timeout: .seconds(10)) == 0, "\(process.output)")
                    #expect(process.output.contains("closing 1 session(s) with 1001"), "\(process.output)")
                    #expect(await Relay.eventually(timeout: .seconds(5)) { log.text.contains("close_code=1001") }, "the relay saw close 1001")
                    await client.close()
                } catch {
                    await process.stop(signal: SIGKILL)
                    throw error
                }
            }
        }
    }
}
