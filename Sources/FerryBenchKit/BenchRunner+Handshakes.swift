import NIOCore

/// The handshakes scenario: connections (with their upgrade, through a relay) opened and closed per
/// second; the rate loop is shared with the TLS scenario.
extension BenchRunner {
    func handshakes(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let sequential = self.options.sequentialHandshakes
        let clients = self.options.parallelHandshakeClients
        let perClient = self.options.handshakesPerClient
        try await self.paths(.echo, backends, ownBackend: true) { path, endpoint, _ in
            let label = path == "tcp" ? "connect+close" : "upgrade+backend connect+close"
            let (rate, parallelRate) = try await self.handshakeRates(endpoint, sequential: sequential, clients: clients, perClient: perClient)
            self.progress("  \(path) \(label): \(Int(rate))/s sequential, \(Int(parallelRate))/s with \(clients) clients")
            results.append(Measurement(scenario: "handshakes", metric: "sequential", unit: "per s", path: path, value: rate, higherIsBetter: true))
            results.append(Measurement(scenario: "handshakes", metric: "\(clients) parallel clients", unit: "per s", path: path, value: parallelRate, higherIsBetter: true))
        }
        return results
    }

    /// Connections opened and closed per second, one after another and from parallel clients. Each
    /// loop also stops after `handshakeSeconds`, so a slow relay (websockify forks per connection)
    /// is measured in bounded time.
    func handshakeRates(_ endpoint: Endpoint, sequential: Int, clients: Int, perClient: Int) async throws -> (Double, Double) {
        let limit = self.options.handshakeSeconds
        var done = 0
        let start = NIODeadline.now()
        while done < sequential && NIODeadline.now() - start < limit {
            try await BenchConnection.connect(to: endpoint, group: self.group).close()
            done += 1
        }
        let rate = Double(done) / (Double((NIODeadline.now() - start).nanoseconds) / 1e9)
        let parallelStart = NIODeadline.now()
        let total = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for _ in 0..<clients {
                tasks.addTask {
                    var count = 0
                    while count < perClient && NIODeadline.now() - parallelStart < limit {
                        try await BenchConnection.connect(to: endpoint, group: self.group).close()
                        count += 1
                    }
                    return count
                }
            }
            return try await tasks.reduce(0, +)
        }
        let parallelRate = Double(total) / (Double((NIODeadline.now() - parallelStart).nanoseconds) / 1e9)
        return (rate, parallelRate)
    }
}
