import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

@testable import FerryCore

extension OperationsTests {
    /// `FerryServer.run()` under a ServiceGroup: the graceful drain on shutdown, step by step.
    @Suite("Graceful drain (real sockets)")
    struct DrainTests {
        /// A server running under a ServiceGroup, and the task running the group.
        struct Running {
            let server: FerryServer
            let relay: RunningRelay
            let group: ServiceGroup
            let task: Task<Void, any Error>
            let finished: NIOLockedValueBox<Bool>

            var isFinished: Bool { self.finished.withLockedValue { $0 } }

            /// Cancels the group (cutting the drain short) and makes sure the server is stopped.
            func abandon() async {
                self.task.cancel()
                _ = await self.task.result
                await self.server.stop(timeout: .seconds(1))
            }
        }

        static func run(limits: Limits, backend: TestBackend) async throws -> Running {
            let server = try ProductionRelay.server(routes: [Route(path: "/", target: backend.target)], limits: limits)
            // start() first, to learn the port; run() then skips binding and waits for the shutdown.
            let relay = RunningRelay(server: server, addresses: try await server.start())
            let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Relay.logger))
            let finished = NIOLockedValueBox(false)
            let task = Task {
                defer { finished.withLockedValue { $0 = true } }
                try await group.run()
            }
            return Running(server: server, relay: relay, group: group, task: task, finished: finished)
        }

        static func expectEcho(_ client: WSTestClient, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await client.send(binary: Array(message.utf8))
            let echoed = try await client.receiveBytes(count: message.utf8.count, timeout: .seconds(5))
            #expect(String(buffer: echoed) == message, sourceLocation: sourceLocation)
        }

        @Test("drain: /readyz 503 at once, new sessions during the delay, listener closed after it, live sessions get 1001 at the timeout, run() returns")
        func drainSequence() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            // Wide enough that a new session fits in the delay on a loaded 2-core machine (the whole
            // suite, Chromium included, runs alongside): 500 ms was once missed by 200 ms.
            let delayMs = 1500
            let timeoutMs = 1000
            let limits = Relay.testLimits {
                $0.drainDelay = .milliseconds(Int64(delayMs))
                $0.drainTimeout = .milliseconds(Int64(timeoutMs))
                $0.closeTimeout = .seconds(2)
            }
            let running = try await Self.run(limits: limits, backend: backend)
            let relay = running.relay
            do {
                let live = try await WSTestClient.upgrade(relay)
                defer { Task { await live.shutdown() } }
                try await Self.expectEcho(live, "before the drain")
                #expect(try await PlainHTTP.get(relay.address, path: "/readyz").status == 200)
                // Give the group time to be running (a trigger before run() is remembered, but this tests the real path).
                try await Task.sleep(for: .milliseconds(100))
                #expect(!running.isFinished)

                let start = ProductionClock.clock.now
                await running.group.triggerGracefulShutdown()

                // At once: not ready, though still accepting.
                #expect(await Relay.eventually(timeout: .seconds(1)) { relay.server.environment.readiness.state == .draining })
                let ready = try await PlainHTTP.get(relay.address, path: "/readyz")
                #expect(ready.status == 503, "\(ready)")
                #expect(ready.body == "draining\n")
                #expect(try await PlainHTTP.get(relay.address, path: "/healthz").status == 200, "alive while draining")

                // During the delay a new session still works end to end.
                let late = try await WSTestClient.upgrade(relay)
                let lateMs = ProductionClock.milliseconds(since: start)
                try await Self.expectEcho(late, "during the delay")
                #expect(try await late.close().code == 1000)
                await late.shutdown()
                #expect(lateMs < delayMs, "the session during the delay was only upgraded after \(lateMs) ms")

                // After the delay the listener is closed: connections are refused.
                var refusedMs: Int?
                let clock = ProductionClock.clock
                let deadline = clock.now.advanced(by: .seconds(3))
                while clock.now < deadline {
                    if !(await PlainHTTP.canConnect(relay.address)) {
                        refusedMs = ProductionClock.milliseconds(since: start)
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let closedAfter = try #require(refusedMs, "the listener was still accepting 3 s into the drain")
                #expect(closedAfter >= delayMs - 30, "the listener closed after \(closedAfter) ms, before the \(delayMs) ms drain delay")

                // The live session goes on after the listener closed ...
                try await Self.expectEcho(live, "after the listener closed")
                #expect(!running.isFinished, "run() returned while a session was live")

                // ... until the drain timeout, when it is asked to close with 1001.
                let close = try await live.waitForClose(timeout: .seconds(5))
                let closeMs = ProductionClock.milliseconds(since: start)
                #expect(close == WSCloseInfo(code: 1001, reason: "going away"))
                #expect(closeMs >= delayMs + timeoutMs - 30, "1001 came after \(closeMs) ms, before delay + timeout (\(delayMs + timeoutMs) ms)")
                #expect(closeMs < delayMs + timeoutMs + 2000, "1001 came only after \(closeMs) ms")
                try await live.sendClose(code: 1001)
                _ = try? await live.waitForDisconnect(timeout: .seconds(3))

                // run() returns, and the group with it, without an error.
                let returned = await Relay.eventually(timeout: .seconds(5)) { running.isFinished }
                #expect(returned, "run() did not return after the sessions ended")
                if returned {
                    let result = await running.task.result
                    #expect(throws: Never.self) { try result.get() }
                }
                #expect(relay.server.environment.registry.count == 0)
                await running.abandon()
            } catch {
                await running.abandon()
                throw error
            }
        }

        @Test("drain: sessions that end on their own end the drain early, without 1001")
        func drainEndsWhenSessionsEnd() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.drainDelay = .milliseconds(200)
                $0.drainTimeout = .seconds(20)
            }
            let running = try await Self.run(limits: limits, backend: backend)
            do {
                let live = try await WSTestClient.upgrade(running.relay)
                defer { Task { await live.shutdown() } }
                try await Task.sleep(for: .milliseconds(100))
                let start = ProductionClock.clock.now
                await running.group.triggerGracefulShutdown()
                try await Task.sleep(for: .milliseconds(400))
                // Past the delay, still within the drain timeout: the session is untouched.
                try await Self.expectEcho(live, "still here")
                #expect(!running.isFinished)
                let reply = try await live.close(code: 1000, reason: "done")
                #expect(reply.code == 1000, "the session ended with the client's close, not a 1001")
                let returned = await Relay.eventually(timeout: .seconds(5)) { running.isFinished }
                let returnedMs = ProductionClock.milliseconds(since: start)
                #expect(returned)
                #expect(returnedMs < 5000, "run() took \(returnedMs) ms; it should return once no session is left, not at the 20 s timeout")
                await running.abandon()
            } catch {
                await running.abandon()
                throw error
            }
        }

        @Test("drain: cancelling the group (a second signal) cuts the drain short")
        func drainCancelled() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.drainDelay = .seconds(20)
                $0.drainTimeout = .seconds(20)
            }
            let running = try await Self.run(limits: limits, backend: backend)
            try await Task.sleep(for: .milliseconds(100))
            let start = ProductionClock.clock.now
            await running.group.triggerGracefulShutdown()
            #expect(await Relay.eventually(timeout: .seconds(1)) { running.server.environment.readiness.state == .draining })
            running.task.cancel()
            let returned = await Relay.eventually(timeout: .seconds(5)) { running.isFinished }
            #expect(returned, "run() ignored cancellation during the drain delay")
            #expect(ProductionClock.milliseconds(since: start) < 5000)
            #expect(!(await PlainHTTP.canConnect(running.relay.address)), "the listener is closed once run() returns")
            await running.abandon()
        }
    }
}
