import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension IntegrationTests {
    /// Backpressure, endings, and timers, over real sockets.
    @Suite("Lifecycle")
    struct Lifecycle {
        /// Writes 64 KiB messages until `total` bytes or an error; counts what the kernel took.
        static func startWriter(_ client: WSTestClient, total: Int, pattern: BytePattern, written: NIOLockedValueBox<Int>) -> Task<Void, Never> {
            Task {
                let chunk = 64 * 1024
                var offset = 0
                while offset < total {
                    do {
                        try await client.send(binary: pattern.buffer(at: offset, count: chunk))
                    } catch {
                        return
                    }
                    offset += chunk
                    written.withLockedValue { $0 = offset }
                }
            }
        }

        /// Samples `counter` every 200 ms until it has not moved for a second (true) or `limit` passes (false).
        static func waitForPlateau(_ counter: @Sendable () -> Int, limit: Duration = .seconds(8)) async throws -> (stalled: Bool, samples: [Int]) {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: limit)
            var samples: [Int] = []
            while clock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                samples.append(counter())
                if samples.count >= 5, Set(samples.suffix(5)).count == 1, samples.last! > 0 {
                    return (true, samples)
                }
            }
            return (false, samples)
        }

        @Test("a backend that does not read stalls the client's writes; they resume when it reads")
        func backpressureClientToBackend() async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 0, paused: true))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay, sendBufferSize: 64 * 1024)
                let total = 64 * 1024 * 1024
                let written = NIOLockedValueBox(0)
                let writer = Self.startWriter(client, total: total, pattern: BytePattern(seed: 9), written: written)
                let (stalled, samples) = try await Self.waitForPlateau { written.withLockedValue { $0 } }
                let plateau = samples.last ?? 0
                print("backpressure client->backend: stalled at \(plateau / 1024) KiB; samples (KiB): \(samples.map { $0 / 1024 })")
                #expect(stalled, "the client's writes never stalled: \(samples.map { $0 / 1024 }) KiB")
                #expect(plateau < total / 2, "the relay took \(plateau / 1024) KiB from a client whose backend reads nothing")
                #expect(client.isActive, "a stalled session stays open")
                #expect(backend.accepted == 1)

                // The backend starts reading: the rest flows, nothing lost.
                try await backend.resumeReading()
                let finished = await Relay.eventually(timeout: .seconds(20)) { written.withLockedValue { $0 } == total }
                #expect(finished, "writes did not resume: \(written.withLockedValue { $0 } / 1024) KiB of \(total / 1024)")
                if !finished { await client.shutdown() }
                _ = await writer.result
                if finished {
                    #expect(try await client.close(timeout: .seconds(10)).code == 1000)
                    let report = try await backend.nextSinkReport(timeout: .seconds(10))
                    #expect(report.byteCount == total)
                    #expect(report.sawEOF)
                }
            }
        }

        /// A client that resets its connection is noticed even while the relay is not reading from it;
        /// the backend side, whose writes cannot drain, is closed after closeTimeout.
        @Test("a stalled session whose client resets is cleaned up within the close timeout")
        func stalledSessionClientReset() async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 0, paused: true))
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.closeTimeout = .milliseconds(500) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let client = try await WSTestClient.upgrade(relay, sendBufferSize: 64 * 1024)
                let written = NIOLockedValueBox(0)
                let writer = Self.startWriter(client, total: 64 * 1024 * 1024, pattern: BytePattern(seed: 10), written: written)
                let (stalled, _) = try await Self.waitForPlateau { written.withLockedValue { $0 } }
                #expect(stalled)
                #expect(relay.server.environment.registry.count == 1)
                await client.abort()
                _ = await writer.result
                #expect(
                    await Relay.eventually(timeout: .seconds(3)) { relay.server.environment.registry.count == 0 },
                    "the session ends although its backend never drains"
                )
            }
        }

        @Test("a stalled session is closed as idle; the relay then reads and drops the client's backlog")
        func stalledSessionIdles() async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 0, paused: true))
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.idleTimeout = .milliseconds(1500)
                $0.closeTimeout = .milliseconds(500)
            }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let client = try await WSTestClient.upgrade(relay, sendBufferSize: 64 * 1024)
                let written = NIOLockedValueBox(0)
                let writer = Self.startWriter(client, total: 64 * 1024 * 1024, pattern: BytePattern(seed: 13), written: written)
                let close = try await client.waitForClose(timeout: .seconds(5))
                #expect(close.code == 1000)
                #expect(close.reason.contains("idle"))
                await client.shutdown()
                _ = await writer.result
                #expect(written.withLockedValue { $0 } < 32 * 1024 * 1024)
                #expect(await Relay.eventually(timeout: .seconds(3)) { relay.server.environment.registry.count == 0 })
            }
        }

        @Test("a client that does not read stalls the backend's writes; they resume when it reads")
        func backpressureBackendToClient() async throws {
            let total = 64 * 1024 * 1024
            let pattern = BytePattern(seed: 12)
            let backend = try await TestBackend.start(.flood(total: total, pattern: pattern))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                try await client.setReading(false)
                let (stalled, samples) = try await Self.waitForPlateau { backend.bytesWritten }
                let plateau = samples.last ?? 0
                print("backpressure backend->client: stalled at \(plateau / 1024) KiB; samples (KiB): \(samples.map { $0 / 1024 })")
                #expect(stalled, "the backend's writes never stalled: \(samples.map { $0 / 1024 }) KiB")
                #expect(plateau < total / 2, "the relay took \(plateau / 1024) KiB from the backend for a client that reads nothing")
                #expect(client.isActive)

                try await client.setReading(true)
                var offset = 0
                var mismatchAt: Int?
                while offset < total {
                    let frame = try await client.receiveFrame(timeout: .seconds(15))
                    guard frame.isData else {
                        Issue.record("\(frame) at offset \(offset) of \(total)")
                        break
                    }
                    if mismatchAt == nil && !pattern.matches(frame.payload, at: offset) { mismatchAt = offset }
                    offset += frame.payload.readableBytes
                }
                #expect(offset == total)
                #expect(mismatchAt == nil, "bytes differ in the frame at offset \(mismatchAt ?? -1)")
                let close = try await client.waitForClose()
                #expect(close.code == 1000, "the backend finished sending and closed")
            }
        }

        @Test("a client that drops TCP without a close frame: the backend gets all data, then EOF")
        func clientDisconnectsAbruptly() async throws {
            let size = 256 * 1024
            let backend = try await TestBackend.start(.sink(keepAtMost: size))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 4)
                try await client.send(binary: pattern.buffer(at: 0, count: size))
                await client.shutdown()
                let report = try await backend.nextSinkReport(timeout: .seconds(5))
                #expect(report.byteCount == size)
                #expect(pattern.matches(report.kept, at: 0))
                #expect(report.sawEOF)
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }

        @Test("a backend that resets the connection: the client gets its bytes, then close 1011")
        func backendReset() async throws {
            let backend = try await TestBackend.start(.reset(greeting: "hello"))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                #expect(String(buffer: try await client.receiveBytes(count: 5)) == "hello")
                let close = try await client.waitForClose()
                #expect(close.code == 1011, "close \(close)")
                #expect(close.reason.contains("backend"))
                try await client.sendClose(code: 1000)
                _ = try await client.waitForDisconnect(timeout: .seconds(3))
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }

        @Test("backend EOF: the client gets every byte, then close 1000")
        func backendEOF() async throws {
            let count = 300_000
            let pattern = BytePattern(seed: 77)
            let backend = try await TestBackend.start(.source(pattern.buffer(at: 0, count: count)))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let received = try await client.receiveBytes(count: count)
                #expect(pattern.matches(received, at: 0))
                let next = try await client.receiveFrame()
                #expect(next.opcode == WSFrame.close, "after the backend's bytes comes the close frame, got \(next)")
                #expect(next.closeCode == 1000)
                #expect(next.closeReason.contains("backend"))
                try await client.sendClose(code: 1000)
                let after = try await client.waitForDisconnect(timeout: .seconds(3))
                #expect(after.isEmpty)
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }

        @Test("client close: the backend gets all data, then EOF, and the client gets a close reply")
        func clientClose() async throws {
            let size = 1 << 20
            let backend = try await TestBackend.start(.sink(keepAtMost: 2 << 20))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 3)
                var offset = 0
                while offset < size {
                    try await client.send(binary: pattern.buffer(at: offset, count: 16 * 1024))
                    offset += 16 * 1024
                }
                let reply = try await client.close(code: 1000, reason: "bye")
                #expect(reply.code == 1000)
                _ = try await client.waitForDisconnect(timeout: .seconds(3))

                let report = try await backend.nextSinkReport(timeout: .seconds(5))
                #expect(report.byteCount == size)
                #expect(pattern.matches(report.kept, at: 0))
                #expect(report.sawEOF, "the backend sees a clean end of stream")
                #expect(report.error == nil)
            }
        }

        /// The close frame comes right behind data the relay still holds for a backend that is not
        /// reading; closing the backend must wait for that data (up to closeTimeout), not drop it.
        @Test("client close behind a backlog: the backend still gets every byte before EOF")
        func clientCloseBehindBacklog() async throws {
            let total = 192 * 1024  // under the relay's 256 KiB buffer, so it reads on to the close frame
            let pattern = BytePattern(seed: 14)
            let backend = try await TestBackend.start(.sink(keepAtMost: total, paused: true))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                var burst = ByteBuffer()
                var offset = 0
                while offset < total {
                    var frame = WSFrameEncoder.encode(opcode: WSFrame.binary, payload: pattern.buffer(at: offset, count: 16 * 1024), maskKey: [5, 6, 7, 8])
                    burst.writeBuffer(&frame)
                    offset += 16 * 1024
                }
                var close = WSFrameEncoder.encode(opcode: WSFrame.close, payload: ByteBuffer(bytes: [0x03, 0xE8]), maskKey: [1, 1, 1, 1])
                burst.writeBuffer(&close)
                try await client.sendRaw(burst)
                let reply = try await client.waitForClose()
                #expect(reply.code == 1000)
                _ = try await client.waitForDisconnect(timeout: .seconds(3))
                try await Task.sleep(for: .milliseconds(200))
                try await backend.resumeReading()
                let report = try await backend.nextSinkReport(timeout: .seconds(5))
                #expect(report.byteCount == total, "bytes queued in the relay when the close arrived are delivered")
                #expect(pattern.matches(report.kept, at: 0))
                #expect(report.sawEOF)
            }
        }

        @Test("an idle session is closed with 1000 and an idle reason; traffic keeps it open")
        func idleTimeout() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            // The idle period is long next to the 100 ms tick so that a loaded CI machine (where a
            // 100 ms sleep can stretch several times over) does not make a busy session look idle.
            let limits = Relay.testLimits { $0.idleTimeout = .milliseconds(1_200) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                // Busy for two idle periods: a message every 100 ms, each echoed, no close.
                let busy = try await WSTestClient.upgrade(relay)
                let clock = ContinuousClock()
                var lastTick = clock.now
                var longestGap = Duration.zero
                for index in 0..<24 {
                    try await busy.send(text: "tick \(index)")
                    let echoed: ByteBuffer
                    do {
                        echoed = try await busy.receiveBytes(count: "tick \(index)".utf8.count, timeout: .seconds(2))
                    } catch {
                        Issue.record("a busy session ended at tick \(index) (longest gap between ticks: \(longestGap)): \(error)")
                        return
                    }
                    #expect(String(buffer: echoed) == "tick \(index)")
                    longestGap = max(longestGap, clock.now - lastTick)
                    lastTick = clock.now
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(busy.isActive)

                let quietSince = clock.now
                let close = try await busy.waitForClose(timeout: .seconds(3))
                let elapsed = clock.now - quietSince
                #expect(close.code == 1000)
                #expect(close.reason.lowercased().contains("idle"), "reason: \(close.reason)")
                #expect(elapsed < .seconds(4), "closed only after \(elapsed)")
                try await busy.sendClose(code: 1000)
                _ = try await busy.waitForDisconnect(timeout: .seconds(3))
            }
        }

        @Test("a client that never answers pings is dropped")
        func pingTimeout() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.pingInterval = .milliseconds(200)
                $0.pingTimeout = .milliseconds(300)
            }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let clock = ContinuousClock()
                let client = try await WSTestClient.upgrade(relay, autoPong: false)
                let started = clock.now
                let frames = try await client.waitForDisconnect(timeout: .seconds(4))
                let elapsed = clock.now - started
                let pings = frames.filter { $0.opcode == WSFrame.ping }
                #expect(!pings.isEmpty, "the relay pinged before giving up; frames: \(frames)")
                #expect(pings.allSatisfy { $0.payload.readableBytes <= 125 && $0.fin })
                #expect(!frames.contains { $0.opcode == WSFrame.close }, "an unresponsive client is dropped without a close handshake")
                #expect(elapsed >= .milliseconds(400), "dropped after \(elapsed), before interval + timeout")
                #expect(elapsed < .seconds(3), "dropped only after \(elapsed)")
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 }, "the backend side is closed too")
            }
        }

        @Test("a client that answers pings stays open past several ping intervals")
        func pingAnswered() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits {
                $0.pingInterval = .milliseconds(200)
                $0.pingTimeout = .milliseconds(300)
            }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let client = try await WSTestClient.upgrade(relay, autoPong: true)
                let clock = ContinuousClock()
                let deadline = clock.now.advanced(by: .milliseconds(1500))
                var frames: [WSFrame] = []
                while clock.now < deadline {
                    do {
                        frames.append(try await client.receiveFrame(timeout: clock.now.duration(to: deadline)))
                    } catch is IntegrationTimeout {
                        break
                    }
                }
                let pings = frames.filter { $0.opcode == WSFrame.ping }.count
                #expect(pings >= 3, "expected a ping about every 200 ms, got \(pings) in 1.5 s: \(frames)")
                #expect(frames.allSatisfy { $0.opcode == WSFrame.ping }, "\(frames)")
                #expect(client.isActive)
                try await client.send(text: "alive")
                #expect(String(buffer: try await client.receiveBytes(count: 5)) == "alive")
                #expect(try await client.close().code == 1000)
            }
        }

        @Test("stopping the server closes live sessions with 1001")
        func serverStop() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: backend.target)],
                limits: Relay.testLimits()
            )
            let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
            let addresses = try await server.start()
            let relay = RunningRelay(server: server, addresses: addresses)
            let client = try await WSTestClient.upgrade(relay)
            async let stopped: Void = server.stop(timeout: .seconds(5))
            let close = try await client.waitForClose(timeout: .seconds(3))
            #expect(close.code == 1001)
            try await client.sendClose(code: 1001)
            _ = try await client.waitForDisconnect(timeout: .seconds(3))
            await stopped
            #expect(server.environment.registry.count == 0)
            // The listener is gone.
            await #expect(throws: (any Error).self) { try await WSTestClient.open(to: relay.address) }
        }
    }
}
