import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension OperationsTests {
    /// Servers that end by themselves (`FerryConfiguration.lifetime`: websockify's `--idle-timeout`,
    /// `--timeout` and `--run-once`), in process and through the `ferry` binary.
    @Suite("Server lifetime (real sockets)")
    struct ServerLifetimeTests {
        /// A started server whose `run()` goes on in a task.
        struct Running {
            let server: FerryServer
            let relay: RunningRelay
            let task: Task<Void, any Error>
            let finished: NIOLockedValueBox<ContinuousClock.Instant?>
            let started: ContinuousClock.Instant
            let log: AuthLogCapture

            var isFinished: Bool { self.finished.withLockedValue { $0 != nil } }

            /// Milliseconds from start() to the end of run(), once it has ended.
            var runMilliseconds: Int? {
                self.finished.withLockedValue { $0 }.map { end in
                    let elapsed = self.started.duration(to: end)
                    return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                }
            }

            /// Waits (bounded) for run() to return.
            func waitForEnd(timeout: Duration = .seconds(5)) async -> Bool {
                await Relay.eventually(timeout: timeout) { self.isFinished }
            }

            /// Stops whatever is left.
            func abandon() async {
                self.task.cancel()
                _ = await self.task.result
                await self.server.stop(timeout: .seconds(1))
            }
        }

        static func start(lifetime: ServerLifetime, backend: TestBackend, limits: Limits = Relay.testLimits()) async throws -> Running {
            let log = AuthLogCapture()
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: backend.target)],
                limits: limits,
                lifetime: lifetime
            )
            let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: log.logger())
            let started = ContinuousClock.now
            let relay = RunningRelay(server: server, addresses: try await server.start())
            let finished = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
            let task = Task {
                defer { finished.withLockedValue { $0 = ContinuousClock.now } }
                try await server.run()
            }
            return Running(server: server, relay: relay, task: task, finished: finished, started: started, log: log)
        }

        static func lifetime(_ adjust: (inout ServerLifetime) -> Void) -> ServerLifetime {
            var lifetime = ServerLifetime()
            adjust(&lifetime)
            return lifetime
        }

        static func expectEcho(_ client: WSTestClient, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await client.send(binary: Array(message.utf8))
            let echoed = try await client.receiveBytes(count: message.utf8.count, timeout: .seconds(5))
            #expect(String(buffer: echoed) == message, sourceLocation: sourceLocation)
        }

        // MARK: --exit-when-idle

        @Test("exitWhenIdle: with no session at all, run() returns about that long after start() and the listener is closed")
        func exitWhenIdleWithoutSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let running = try await Self.start(lifetime: Self.lifetime { $0.exitWhenIdle = .milliseconds(500) }, backend: backend)
            do {
                #expect(await running.waitForEnd(timeout: .seconds(5)), "run() did not return")
                let elapsed = try #require(running.runMilliseconds)
                #expect(elapsed >= 450 && elapsed < 2500, "run() returned after \(elapsed) ms")
                #expect(!(await PlainHTTP.canConnect(running.relay.address)), "the listener is still open")
                #expect(running.log.text.contains("exiting: no session for 500ms"), "\(running.log.text)")
                _ = try await running.task.value
            } catch {
                await running.abandon()
                throw error
            }
            await running.abandon()
        }

        @Test("exitWhenIdle: not while a session is open; the idle clock restarts when the last one ends")
        func exitWhenIdleWaitsForSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let idleMs = 600
            let running = try await Self.start(lifetime: Self.lifetime { $0.exitWhenIdle = .milliseconds(Int64(idleMs)) }, backend: backend)
            do {
                let client = try await WSTestClient.upgrade(running.relay)
                // Well past the idle time with the session open (and quiet): still running.
                try await Task.sleep(for: .milliseconds(idleMs * 2))
                #expect(!running.isFinished, "run() returned while a session was open")
                try await Self.expectEcho(client, "still here")
                // A plain HTTP request is not a session, and does not end the server either.
                #expect(try await PlainHTTP.get(running.relay.address, path: "/readyz").status == 200)

                let closed = ContinuousClock.now
                _ = try await client.close()
                await client.shutdown()
                #expect(await running.waitForEnd(timeout: .seconds(5)), "run() did not return after the session ended")
                let end = try #require(running.finished.withLockedValue { $0 })
                let afterClose = closed.duration(to: end)
                #expect(afterClose >= .milliseconds(idleMs - 100) && afterClose < .milliseconds(idleMs + 2000), "run() returned \(afterClose) after the session ended")
                #expect(!(await PlainHTTP.canConnect(running.relay.address)))
            } catch {
                await running.abandon()
                throw error
            }
            await running.abandon()
        }

        // MARK: --accept-for

        @Test("acceptFor: the listener closes at the deadline, an open session goes on past it, run() returns when it ends")
        func acceptForKeepsSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let acceptMs = 700
            // A short drain timeout: were the session cut like a drain, it would be within a second.
            let limits = Relay.testLimits {
                $0.drainDelay = .zero
                $0.drainTimeout = .milliseconds(200)
            }
            let running = try await Self.start(lifetime: Self.lifetime { $0.acceptFor = .milliseconds(Int64(acceptMs)) }, backend: backend, limits: limits)
            do {
                let client = try await WSTestClient.upgrade(running.relay)
                try await Self.expectEcho(client, "before the deadline")
                #expect(await PlainHTTP.canConnect(running.relay.address))

                #expect(await Relay.eventually(timeout: .seconds(3)) { running.log.text.contains("no longer accepting: --accept-for 700ms passed") }, "\(running.log.text)")
                #expect(ProductionClock.milliseconds(since: running.started) >= acceptMs - 50)
                #expect(!(await PlainHTTP.canConnect(running.relay.address)), "the listener is still open after the deadline")

                // Well past the deadline the session still works, and run() waits for it.
                try await Task.sleep(for: .milliseconds(1500))
                try await Self.expectEcho(client, "after the deadline")
                #expect(!running.isFinished, "run() returned while a session was open")

                _ = try await client.close()
                await client.shutdown()
                #expect(await running.waitForEnd(timeout: .seconds(5)), "run() did not return after the last session ended")
                #expect(running.log.text.contains("exiting: the last session ended"), "\(running.log.text)")
                _ = try await running.task.value
            } catch {
                await running.abandon()
                throw error
            }
            await running.abandon()
        }

        @Test("acceptFor: with no session, run() returns at the deadline")
        func acceptForWithoutSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let running = try await Self.start(lifetime: Self.lifetime { $0.acceptFor = .milliseconds(400) }, backend: backend)
            do {
                #expect(await running.waitForEnd(timeout: .seconds(5)))
                let elapsed = try #require(running.runMilliseconds)
                #expect(elapsed >= 350 && elapsed < 2500, "run() returned after \(elapsed) ms")
            } catch {
                await running.abandon()
                throw error
            }
            await running.abandon()
        }

        // MARK: --run-once

        @Test("runOnce: plain HTTP does not count; after the first session no other connection gets in; run() returns when it ends")
        func runOnce() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let running = try await Self.start(lifetime: Self.lifetime { $0.runOnce = true }, backend: backend)
            do {
                #expect(try await PlainHTTP.get(running.relay.address, path: "/readyz").status == 200)
                try await Task.sleep(for: .milliseconds(200))
                #expect(!running.isFinished)
                #expect(await PlainHTTP.canConnect(running.relay.address), "a plain HTTP request closed the listener")

                let first = try await WSTestClient.upgrade(running.relay)
                #expect(await Relay.eventually(timeout: .seconds(3)) { running.log.text.contains("no longer accepting: the first session is open (--run-once)") }, "\(running.log.text)")
                #expect(!(await PlainHTTP.canConnect(running.relay.address)), "a second connection got in")
                await #expect(throws: (any Error).self) { _ = try await WSTestClient.upgrade(running.relay) }

                try await Task.sleep(for: .milliseconds(300))
                try await Self.expectEcho(first, "the one session")
                #expect(!running.isFinished, "run() returned while the session was open")
                #expect(backend.accepted == 1)

                _ = try await first.close()
                await first.shutdown()
                #expect(await running.waitForEnd(timeout: .seconds(5)), "run() did not return after the session ended")
                _ = try await running.task.value
            } catch {
                await running.abandon()
                throw error
            }
            await running.abandon()
        }

        // MARK: Shutdown still wins

        @Test("graceful shutdown (SIGTERM) still drains and ends run() in a lifetime mode")
        func gracefulShutdownWins() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.drainDelay = .zero
                $0.drainTimeout = .milliseconds(300)
            }
            let lifetime = Self.lifetime {
                $0.exitWhenIdle = .seconds(60)
                $0.acceptFor = .seconds(60)
            }
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: backend.target)],
                limits: limits,
                lifetime: lifetime
            )
            let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
            let relay = RunningRelay(server: server, addresses: try await server.start())
            let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Relay.logger))
            let task = Task { try await group.run() }
            do {
                let client = try await WSTestClient.upgrade(relay)
                try await Task.sleep(for: .milliseconds(100))
                let start = ContinuousClock.now
                await group.triggerGracefulShutdown()
                // The drain timeout passes and the session gets 1001.
                let close = try await client.waitForClose(timeout: .seconds(5))
                #expect(close.code == 1001, "\(close)")
                await client.shutdown()
                try await task.value
                #expect(start.duration(to: .now) < .seconds(5))
                #expect(!(await PlainHTTP.canConnect(relay.address)))
            } catch {
                task.cancel()
                _ = await task.result
                await server.stop(timeout: .seconds(1))
                throw error
            }
        }

        @Test("cancellation cuts a lifetime wait short")
        func cancellationEndsRun() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let running = try await Self.start(lifetime: Self.lifetime { $0.runOnce = true }, backend: backend, limits: Relay.testLimits { $0.drainDelay = .seconds(30) })
            try await Task.sleep(for: .milliseconds(100))
            running.task.cancel()
            #expect(await running.waitForEnd(timeout: .seconds(5)), "run() did not return on cancellation")
            #expect(!(await PlainHTTP.canConnect(running.relay.address)))
            await running.abandon()
        }

        // MARK: The ferry binary

        /// Runs `ferry` with `arguments`; `during` is called once it has started (with its pid) and
        /// the process is given `timeout` to exit. Returns the exit status, the output and the seconds run.
        static func runFerry(_ arguments: [String], timeout: Duration = .seconds(15), during: (Int32) async throws -> Void = { _ in }) async throws -> (status: Int32, output: String, elapsed: Duration) {
            let ferry = try #require(FerryExecutable.path, "the ferry executable was not built next to the tests")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ferry)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            let started = ContinuousClock.now
            try process.run()
            let reader = Task.detached { (try? output.fileHandleForReading.readToEnd()) ?? Data() }
            try await during(process.processIdentifier)
            let exited = await Relay.eventually(timeout: timeout) { !process.isRunning }
            let elapsed = started.duration(to: .now)
            if !exited {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            let text = String(decoding: await reader.value, as: UTF8.self)
            #expect(exited, "ferry did not exit within \(timeout):\n\(text)")
            return (process.terminationStatus, text, elapsed)
        }

        @Test("the ferry binary with --exit-when-idle 1s exits 0 by itself, and removes its Unix socket")
        func binaryExitsWhenIdle() async throws {
            let path = UnixListenerTests.socketPath()
            defer { unlink(path) }
            // It is listening (the socket file is there) before it exits, which it does a second
            // later. Watched from a thread of its own: a task polling on the shared concurrency pool
            // missed that second in a full run, while other tests held the pool's threads.
            let sawSocket = NIOLockedValueBox(false)
            let watching = NIOLockedValueBox(true)
            Thread.detachNewThread {
                let deadline = Date().addingTimeInterval(20)
                while watching.withLockedValue({ $0 }) && Date() < deadline {
                    if UnixListenerTests.fileInfo(path)?.isSocket == true {
                        sawSocket.withLockedValue { $0 = true }
                        return
                    }
                    usleep(2_000)
                }
            }
            let (status, output, elapsed) = try await Self.runFerry([
                "--listen", "unix:\(path)", "--route", "/=127.0.0.1:9", "--exit-when-idle", "1s",
            ])
            watching.withLockedValue { $0 = false }
            #expect(sawSocket.withLockedValue { $0 }, "no socket at \(path) while it ran")
            #expect(status == 0, "exit status \(status):\n\(output)")
            #expect(elapsed >= .milliseconds(900), "exited after \(elapsed)")
            #expect(output.contains("listening address=unix:\(path)"), "\(output)")
            #expect(output.contains("exiting: no session for 1s"), "\(output)")
            #expect(UnixListenerTests.fileInfo(path) == nil, "the socket file is still there")
        }

        @Test("the ferry binary in a lifetime mode still drains on SIGTERM and exits 0")
        func binarySIGTERM() async throws {
            let port = try await FreePort.on()
            let (status, output, _) = try await Self.runFerry([
                "--listen", "127.0.0.1:\(port)", "--route", "/=127.0.0.1:9", "--accept-for", "1m", "--drain-delay", "0",
            ]) { pid in
                let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                var up = false
                for _ in 0..<100 where !up {
                    up = await PlainHTTP.canConnect(address)
                    if !up { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(up, "ferry did not start listening")
                kill(pid, SIGTERM)
            }
            #expect(status == 0, "exit status \(status):\n\(output)")
            #expect(output.contains("draining"), "\(output)")
        }

        /// A supervisor may send SIGTERM the moment the port opens. The signals used to be trapped
        /// only once the service group ran, after the listeners had opened: about one start in
        /// twenty died of the default action (status 15) without a drain.
        @Test("SIGTERM the moment the port opens: a drain and status 0, twenty starts in a row")
        func binarySIGTERMAtOnce() async throws {
            for round in 1...20 {
                let port = try await FreePort.on()
                let (status, output, _) = try await Self.runFerry(["--listen", "127.0.0.1:\(port)", "--route", "/=127.0.0.1:9", "--drain-delay", "0"]) { pid in
                    let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                    var up = false
                    for _ in 0..<1000 where !up {
                        up = await PlainHTTP.canConnect(address)
                        if !up { try await Task.sleep(for: .milliseconds(5)) }
                    }
                    #expect(up, "ferry did not start listening")
                    kill(pid, SIGTERM)
                }
                #expect(status == 0, "start \(round): exit status \(status):\n\(output)")
                #expect(output.contains("draining"), "start \(round): \(output)")
                if status != 0 { break }
            }
        }
    }
}
