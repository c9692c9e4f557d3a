import NIOCore

/// The client scenario: the other end of a session (`ferry connect --listen`, websocat's
/// `tcp-l:` → `ws://`) in front of the first relay. A plain TCP client talks to the client end's
/// local port; the chain is client end → relay → backend, and "tcp" is the backend directly. The
/// CPU and memory figures are the client end's own (the relay is the same in every chain).
extension BenchRunner {
    func client(_ backends: BenchBackends) async throws -> [Measurement] {
        guard let relayLauncher = self.options.relays.first, !self.options.clients.isEmpty else { return [] }
        var results: [Measurement] = []
        let total = self.options.bulkBytes
        func record(_ metric: String, _ path: String, _ value: Double, _ unit: String, higherIsBetter: Bool) {
            results.append(Measurement(scenario: "client", metric: metric, unit: unit, path: path, value: value, higherIsBetter: higherIsBetter))
            self.progress("  \(path) \(metric): \(Int(value)) \(unit)")
        }
        /// Runs `body` on a chain to a backend of `kind`: the relay, then the client end in front of it.
        func chain(_ kind: BackendKind, _ launcher: RelayLauncher, _ body: (Endpoint, RunningRelay) async throws -> Void) async throws {
            let relay = try await relayLauncher.start(target: backends.port(of: kind), bufferSize: self.options.relayBufferSize, group: self.group)
            do {
                let client = try await launcher.start(target: relay.port, bufferSize: nil, group: self.group)
                do {
                    try await body(Endpoint(port: client.port, isWebSocket: false), client)
                } catch {
                    await client.stop()
                    throw error
                }
                await client.stop()
            } catch {
                await relay.stop()
                throw error
            }
            await relay.stop()
        }

        // Plain TCP to the backends: the scale for every chain.
        for (kind, metric) in [(BackendKind.sink, "upload, 1 connection"), (.source, "download, 1 connection")] {
            let connection = try await BenchConnection.connect(to: Endpoint(port: backends.port(of: kind), isWebSocket: false), group: self.group)
            let (seconds, _) = try await timedTransfer(bytes: total, relay: nil) {
                try await self.transfer(kind, total, over: connection)
            }
            await connection.close()
            record(metric, "tcp", Double(total) / seconds / 1_000_000, "MB/s", higherIsBetter: true)
        }
        let echoCount = min(self.options.echoCount, 5000)
        let direct = try await LeanEchoClient(port: backends.port(of: .echo), isWebSocket: false)
            .roundTrips(count: echoCount, size: self.options.echoSize, warmUp: min(500, echoCount / 10))
        record("\(self.options.echoSize) B echo RTT p50", "tcp", Double(sortedPercentile(direct, 0.5)) / 1000, "µs", higherIsBetter: false)
        record("\(self.options.echoSize) B echo RTT p99", "tcp", Double(sortedPercentile(direct, 0.99)) / 1000, "µs", higherIsBetter: false)

        for launcher in self.options.clients {
            for (kind, metric) in [(BackendKind.sink, "upload, 1 connection"), (.source, "download, 1 connection")] {
                try await chain(kind, launcher) { endpoint, client in
                    let connection = try await BenchConnection.connect(to: endpoint, group: self.group)
                    let (seconds, cpu) = try await timedTransfer(bytes: total, relay: client) {
                        try await self.transfer(kind, total, over: connection)
                    }
                    await connection.close()
                    record(metric, launcher.name, Double(total) / seconds / 1_000_000, "MB/s", higherIsBetter: true)
                    if let cpu { record("client CPU, \(metric)", launcher.name, cpu, "ms/GiB", higherIsBetter: false) }
                }
            }
            try await chain(.echo, launcher) { endpoint, _ in
                let durations = try await LeanEchoClient(port: endpoint.port, isWebSocket: false)
                    .roundTrips(count: echoCount, size: self.options.echoSize, warmUp: min(500, echoCount / 10))
                record("\(self.options.echoSize) B echo RTT p50", launcher.name, Double(sortedPercentile(durations, 0.5)) / 1000, "µs", higherIsBetter: false)
                record("\(self.options.echoSize) B echo RTT p99", launcher.name, Double(sortedPercentile(durations, 0.99)) / 1000, "µs", higherIsBetter: false)
            }
            try await chain(.echo, launcher) { endpoint, client in
                let sessions = self.options.clientIdleSessions
                let warm = try await BenchConnection.connect(to: endpoint, group: self.group)
                _ = try await warm.echo(size: 16)
                try await Task.sleep(for: .milliseconds(300))
                let baseline = client.residentBytes()
                var open = [warm]
                while open.count <= sessions {
                    let batch = min(100, sessions + 1 - open.count)
                    let made = try await withThrowingTaskGroup(of: BenchConnection.self) { tasks in
                        for _ in 0..<batch {
                            tasks.addTask {
                                let connection = try await BenchConnection.connect(to: endpoint, group: self.group)
                                _ = try await connection.echo(size: 16)
                                return connection
                            }
                        }
                        return try await tasks.reduce(into: []) { $0.append($1) }
                    }
                    open += made
                }
                try await Task.sleep(for: .milliseconds(500))
                let perSession = Double(client.residentBytes() &- baseline) / Double(sessions) / 1024
                for connection in open { await connection.close() }
                record("\(sessions) idle local sessions: RSS per session", launcher.name, perSession, "KiB", higherIsBetter: false)
            }
        }
        return results
    }

    /// An upload to a sink or a download from a source of `count` bytes.
    private func transfer(_ kind: BackendKind, _ count: Int, over connection: BenchConnection) async throws {
        if kind == .sink {
            try await connection.upload(count: count, messageSize: self.options.messageSize)
        } else {
            try await connection.download(count: count)
        }
    }
}
