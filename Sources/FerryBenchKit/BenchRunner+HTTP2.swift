import NIOCore

/// The http2 scenario: WebSockets as streams of one HTTP/2 connection (RFC 8441) against `wss://`
/// over HTTP/1.1, through the first relay with the same ECDSA certificate, in the same run: new
/// sessions per second, throughput with 1 and 16 sessions, 64 B echo round trips and idle memory per
/// session. The same NIO client drives both (``BenchConnection``), so the difference is the protocol.
extension BenchRunner {
    func http2(_ backends: BenchBackends) async throws -> [Measurement] {
        guard let launcher = self.options.relays.first else { return [] }
        let certificates = try BenchCertificates.make()
        defer { certificates.remove() }
        let tls = try BenchCertificates.clientContext()
        let pair = certificates.ecdsa
        var results: [Measurement] = []
        func record(_ metric: String, _ path: String, _ value: Double, _ unit: String) {
            self.progress("  \(path) \(metric): \(String(format: unit == "µs" || unit == "KiB" ? "%.1f" : "%.0f", value)) \(unit)")
            let higher = unit == "MB/s" || unit == "per s"
            results.append(Measurement(scenario: "http2", metric: metric, unit: unit, path: path, value: value, higherIsBetter: higher))
        }
        let h1 = "wss HTTP/1.1"
        let h2 = "wss HTTP/2"
        let parallel = self.options.parallelConnections
        let total = self.options.bulkBytes
        let messageSize = self.options.messageSize

        // New sessions: HTTP/1.1 opens a TCP connection and a TLS session for each; HTTP/2 a stream.
        let echo = try await BenchBackends.listen(.echo, group: self.group)
        defer { echo.close(promise: nil) }
        let relay = try await launcher.start(target: echo.localAddress!.port!, bufferSize: self.options.relayBufferSize, tls: pair, group: self.group)
        let endpoint = Endpoint(port: relay.port, isWebSocket: true, tls: tls)
        let connection = try await BenchHTTP2Connection.connect(port: relay.port, group: self.group)
        let clients = min(self.options.parallelHandshakeClients, 50)
        let counts = (sequential: self.options.sequentialHandshakes, perClient: self.options.handshakesPerClient)
        let h1Rates = try await self.sessionRates(sequential: counts.sequential, clients: clients, perClient: counts.perClient, relay: relay) {
            try await BenchConnection.connect(to: endpoint, group: self.group)
        }
        let h2Rates = try await self.sessionRates(sequential: counts.sequential, clients: clients, perClient: counts.perClient, relay: relay) {
            try await connection.openSession()
        }
        record("new sessions, one at a time", h1, h1Rates.sequential, "per s")
        record("new sessions, one at a time", h2, h2Rates.sequential, "per s")
        record("new sessions, \(clients) at once", h1, h1Rates.parallel, "per s")
        record("new sessions, \(clients) at once", h2, h2Rates.parallel, "per s")
        if let a = h1Rates.relayCPUMicros, let b = h2Rates.relayCPUMicros {
            record("relay CPU per new session", h1, a, "µs")
            record("relay CPU per new session", h2, b, "µs")
        }

        // 64 B round trips.
        for (path, session) in [(h1, try await BenchConnection.connect(to: endpoint, group: self.group)), (h2, try await connection.openSession())] {
            var durations: [UInt64] = []
            for index in 0..<(self.options.echoCount + 200) {
                let nanoseconds = try await session.echo(size: self.options.echoSize)
                if index >= 200 { durations.append(nanoseconds) }
            }
            durations.sort()
            record("\(self.options.echoSize) B echo RTT p50", path, Double(sortedPercentile(durations, 0.5)) / 1000, "µs")
            record("\(self.options.echoSize) B echo RTT p99", path, Double(sortedPercentile(durations, 0.99)) / 1000, "µs")
            await session.close()
        }

        await connection.close()
        await relay.stop()

        // Idle memory per session: HTTP/1.1 connections against streams, 100 per HTTP/2 connection,
        // each in a relay of its own (memory an ended session freed is not read as the next one's).
        let idle = self.options.http2IdleSessions
        for path in [h1, h2] {
            let relay = try await launcher.start(target: echo.localAddress!.port!, bufferSize: self.options.relayBufferSize, tls: pair, group: self.group)
            let endpoint = Endpoint(port: relay.port, isWebSocket: true, tls: tls)
            let warm = try await BenchConnection.connect(to: endpoint, group: self.group)
            _ = try await warm.echo(size: 16)
            try await Task.sleep(for: .milliseconds(300))
            let baseline = relay.residentBytes()
            var connections: [BenchHTTP2Connection] = []
            var sessions: [BenchConnection] = []
            for index in 0..<idle {
                let session: BenchConnection
                if path == h1 {
                    session = try await BenchConnection.connect(to: endpoint, group: self.group)
                } else {
                    if index % 100 == 0 { connections.append(try await BenchHTTP2Connection.connect(port: relay.port, group: self.group)) }
                    session = try await connections[connections.count - 1].openSession()
                }
                _ = try await session.echo(size: 16)
                sessions.append(session)
            }
            try await Task.sleep(for: .milliseconds(500))
            record("idle memory per session (\(idle))", path, Double(relay.residentBytes() &- baseline) / Double(idle) / 1024, "KiB")
            for session in sessions { await session.close() }
            for connection in connections { await connection.close() }
            await warm.close()
            await relay.stop()
        }

        // Throughput: one session, and `parallel` sessions (HTTP/2: all on one connection).
        for kind in [BackendKind.sink, .source] {
            let relay = try await launcher.start(target: backends.port(of: kind), bufferSize: self.options.relayBufferSize, tls: pair, group: self.group)
            let endpoint = Endpoint(port: relay.port, isWebSocket: true, tls: tls)
            let direction = kind == .sink ? "upload" : "download"
            func move(_ session: BenchConnection, _ bytes: Int) async throws {
                if kind == .sink {
                    try await session.upload(count: bytes, messageSize: messageSize)
                } else {
                    try await session.download(count: bytes)
                }
            }
            let h2Connection = try await BenchHTTP2Connection.connect(port: relay.port, group: self.group)
            for (path, open) in [
                (h1, { try await BenchConnection.connect(to: endpoint, group: self.group) }),
                (h2, { try await h2Connection.openSession() }),
            ] as [(String, () async throws -> BenchConnection)] {
                let one = try await open()
                let (seconds, cpu) = try await timedTransfer(bytes: total, relay: relay) { try await move(one, total) }
                await one.close()
                record("\(direction), 1 session", path, Double(total) / seconds / 1_000_000, "MB/s")
                if let cpu { record("relay CPU, \(direction), 1 session", path, cpu, "ms/GiB") }
                var many: [BenchConnection] = []
                for _ in 0..<parallel { many.append(try await open()) }
                let share = total / parallel
                let parallelSeconds = try await timed {
                    try await withThrowingTaskGroup(of: Void.self) { tasks in
                        for session in many { tasks.addTask { try await move(session, share) } }
                        try await tasks.waitForAll()
                    }
                }
                for session in many { await session.close() }
                record("\(direction), \(parallel) sessions", path, Double(share * parallel) / parallelSeconds / 1_000_000, "MB/s")
            }
            await h2Connection.close()
            await relay.stop()
        }
        return results
    }
}
