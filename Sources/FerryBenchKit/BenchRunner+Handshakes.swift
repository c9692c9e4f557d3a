import NIOConcurrencyHelpers
import NIOCore

/// The handshakes scenario: connections opened and closed per second, with the lean client (blocking
/// sockets, one thread per client, nothing allocated per connection) so that the figure is the
/// relay's and not the client's. Its ceiling is shown first, against a minimal WebSocket server
/// (`MinimalWebSocketServer`: no parser, no backend), then the floor of a relay on NIO's channels
/// (`MinimalWebSocketRelay`: accept, backend connect, 101, close, nothing else). The NIO-client rate
/// loop below is the TLS scenario's (the lean client speaks plaintext only).
extension BenchRunner {
    func handshakes(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let clients = self.options.parallelHandshakeClients
        func record(_ path: String, sequential: LeanHandshakeClient.Result, parallel: LeanHandshakeClient.Result, cpuMicros: Double?) {
            results.append(Measurement(scenario: "handshakes", metric: "sequential", unit: "per s", path: path, value: sequential.perSecond, higherIsBetter: true))
            results.append(Measurement(scenario: "handshakes", metric: "\(clients) parallel clients", unit: "per s", path: path, value: parallel.perSecond, higherIsBetter: true))
            results.append(Measurement(scenario: "handshakes", metric: "sequential: time per handshake p50", unit: "µs", path: path, value: sequential.percentile(0.5) / 1000, higherIsBetter: false))
            results.append(Measurement(scenario: "handshakes", metric: "sequential: time per handshake p99", unit: "µs", path: path, value: sequential.percentile(0.99) / 1000, higherIsBetter: false))
            if let cpuMicros {
                results.append(Measurement(scenario: "handshakes", metric: "relay CPU per handshake (\(clients) clients)", unit: "µs", path: path, value: cpuMicros, higherIsBetter: false))
            }
            var line = "  \(path): \(Int(sequential.perSecond))/s sequential (p50 \(Int(sequential.percentile(0.5) / 1000)) µs), \(Int(parallel.perSecond))/s with \(clients) clients"
            if let cpuMicros { line += ", relay CPU \(Int(cpuMicros)) µs per handshake" }
            let failures = sequential.failed + parallel.failed
            if failures > 0 { line += "; \(failures) failed (first: \(sequential.firstError ?? parallel.firstError ?? "?"))" }
            self.progress(line)
        }

        let minimal = try await MinimalWebSocketServer.start(group: self.group)
        let ceiling = try await self.leanHandshakes(port: minimal.port, mode: .webSocket, relay: nil)
        await minimal.stop()
        record("minimal WebSocket server (client ceiling)", sequential: ceiling.sequential, parallel: ceiling.parallel, cpuMicros: nil)

        try await self.throughFloorRelay("handshakes") { name, relay in
            let rates = try await self.leanHandshakes(port: relay.port, mode: .webSocket, relay: relay)
            record(name, sequential: rates.sequential, parallel: rates.parallel, cpuMicros: rates.relayCPUMicros)
        }

        try await self.paths(.echo, backends, ownBackend: true) { path, endpoint, relay in
            let rates = try await self.leanHandshakes(port: endpoint.port, mode: endpoint.isWebSocket ? .webSocket : .tcp, relay: relay)
            record(path, sequential: rates.sequential, parallel: rates.parallel, cpuMicros: rates.relayCPUMicros)
        }
        return results
    }

    /// Runs `body` against the floor relay (``MinimalWebSocketRelay``, when the options name one) with
    /// an echo backend of its own. The floor is a reference column: its failure is reported and left
    /// out, not a failed run.
    func throughFloorRelay(_ scenario: String, _ body: (String, RunningRelay) async throws -> Void) async throws {
        guard let floor = self.options.floorRelay else { return }
        let echo = try await BenchBackends.listen(.echo, group: self.group)
        let relay = try await floor.start(target: echo.localAddress!.port!, bufferSize: nil, group: self.group)
        do {
            try await body(floor.name, relay)
        } catch {
            self.progress("  \(floor.name): \(scenario) failed (\(error)); left out")
        }
        await relay.stop()
        try? await echo.close()
    }

    /// One sequential run and one run with `parallelHandshakeClients` clients; with a relay, its CPU
    /// per handshake over the parallel run. `path` is the upgrade's request target.
    func leanHandshakes(
        port: Int, mode: LeanHandshakeClient.Mode, path: String = "/", relay: RunningRelay?
    ) async throws -> (sequential: LeanHandshakeClient.Result, parallel: LeanHandshakeClient.Result, relayCPUMicros: Double?) {
        let client = LeanHandshakeClient(port: port, mode: mode, path: path)
        let limit = Double(self.options.handshakeSeconds.nanoseconds) / 1e9
        let sequential = await client.run(clients: 1, perClient: self.options.sequentialHandshakes, limitSeconds: limit)
        let cpuBefore = relay?.cpuNanoseconds()
        let parallel = await client.run(
            clients: self.options.parallelHandshakeClients, perClient: self.options.handshakesPerClient, limitSeconds: limit
        )
        var cpuMicros: Double?
        if let before = cpuBefore, let after = relay?.cpuNanoseconds(), parallel.completed > 0 {
            cpuMicros = Double(after - before) / 1000 / Double(parallel.completed)
        }
        guard sequential.completed > 0, parallel.completed > 0 else {
            throw BenchError.handshakeFailed(sequential.firstError ?? parallel.firstError ?? "no handshake completed")
        }
        return (sequential, parallel, cpuMicros)
    }

    /// Connections opened and closed per second with the NIO client, one after another and from
    /// parallel clients (the TLS scenario's loop), and with a relay, its CPU per handshake over the
    /// parallel run. Each loop also stops after `handshakeSeconds`, so a slow relay (websockify forks
    /// per connection) is measured in bounded time.
    func handshakeRates(
        _ endpoint: Endpoint, sequential: Int, clients: Int, perClient: Int, relay: RunningRelay? = nil
    ) async throws -> (sequential: Double, parallel: Double, relayCPUMicros: Double?) {
        try await self.sessionRates(sequential: sequential, clients: clients, perClient: perClient, relay: relay) {
            try await BenchConnection.connect(to: endpoint, group: self.group)
        }
    }

    /// Sessions opened (by `open`) and closed: `sequential` one at a time, then `clients` at once,
    /// `perClient` each, every loop bounded by the handshake seconds; with the relay's CPU per
    /// session during the parallel part.
    func sessionRates(
        sequential: Int,
        clients: Int,
        perClient: Int,
        relay: RunningRelay?,
        open: @escaping @Sendable () async throws -> BenchConnection
    ) async throws -> (sequential: Double, parallel: Double, relayCPUMicros: Double?) {
        let limit = self.options.handshakeSeconds
        var done = 0
        let start = NIODeadline.now()
        let failures = NIOLockedValueBox((count: 0, first: String?.none))
        @Sendable func attempt() async -> Bool {
            do {
                try await open().close()
                return true
            } catch {
                failures.withLockedValue { if $0.first == nil { $0.first = "\(error)" }; $0.count += 1 }
                return false
            }
        }
        while done < sequential && NIODeadline.now() - start < limit {
            if await attempt() { done += 1 }
            if failures.withLockedValue({ $0.count }) > 20 { break }
        }
        let rate = Double(done) / (Double((NIODeadline.now() - start).nanoseconds) / 1e9)
        let cpuBefore = relay?.cpuNanoseconds()
        let parallelStart = NIODeadline.now()
        let total = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for _ in 0..<clients {
                tasks.addTask {
                    var count = 0
                    while count < perClient && NIODeadline.now() - parallelStart < limit {
                        if await attempt() { count += 1 }
                        if failures.withLockedValue({ $0.count }) > 20 { break }
                    }
                    return count
                }
            }
            return try await tasks.reduce(0, +)
        }
        let parallelRate = Double(total) / (Double((NIODeadline.now() - parallelStart).nanoseconds) / 1e9)
        var cpuMicros: Double?
        if let before = cpuBefore, let after = relay?.cpuNanoseconds(), total > 0 {
            cpuMicros = Double(after &- before) / 1000 / Double(total)
        }
        let failed = failures.withLockedValue { $0 }
        // A session that fails is counted, not fatal: a relay under load may refuse a few; more than
        // 20 ends the loop, and the run says why.
        if failed.count > 0 { self.progress("  (\(failed.count) sessions failed to open; the first: \(failed.first ?? "?"))") }
        guard done + total > 0 else { throw BenchError.handshakeFailed(failed.first ?? "no session opened") }
        return (rate, parallelRate, cpuMicros)
    }
}
