import FerryCore

/// The idle scenario: idle sessions ramped up step by step through each relay, with its memory per
/// session at each step, since what an idle session costs bounds how many a relay can hold.
extension BenchRunner {
    func idle(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let limit = FileLimit.current()
        // The benchmark holds a client and a backend socket per session (the relay two as well), so a
        // step past the file limit becomes the last step the limit allows: "as far as it goes".
        let reachable = max(1, (limit - 256) / 2 / 100 * 100)
        var steps: [Int] = []
        for step in self.options.idleSteps where !steps.contains(min(step, reachable)) { steps.append(min(step, reachable)) }
        if steps != self.options.idleSteps { self.progress("  (file limit \(limit): ramping to \(reachable) sessions at most)") }
        for launcher in self.options.relays {
            let echo = try await BenchBackends.listen(.echo, group: self.group)
            defer { echo.close(promise: nil) }
            let relay = try await launcher.start(target: echo.localAddress!.port!, bufferSize: self.options.relayBufferSize, group: self.group)
            let warm = try await BenchConnection.connect(to: Endpoint(port: relay.port, isWebSocket: true), group: self.group)
            _ = try await warm.echo(size: 16)
            try await Task.sleep(for: .milliseconds(300))
            let baseline = relay.residentBytes()
            var open: [BenchConnection] = [warm]
            for step in steps {
                var failures = 0
                if relay.residentBytes() > self.options.idleMemoryCeiling {
                    self.progress("  \(launcher.name): over \(self.options.idleMemoryCeiling >> 20) MiB, not ramped further")
                    break
                }
                while open.count - 1 < step && relay.residentBytes() < self.options.idleMemoryCeiling {
                    let batch = min(200, step - (open.count - 1))
                    let connected = await withTaskGroup(of: BenchConnection?.self) { tasks in
                        for _ in 0..<batch {
                            tasks.addTask {
                                guard let connection = try? await BenchConnection.connect(to: Endpoint(port: relay.port, isWebSocket: true), group: self.group) else { return nil }
                                guard (try? await connection.echo(size: 16)) != nil else { await connection.close(); return nil }
                                return connection
                            }
                        }
                        var made: [BenchConnection] = []
                        for await connection in tasks { if let connection { made.append(connection) } else { failures += 1 } }
                        return made
                    }
                    open += connected
                    if connected.isEmpty { break }
                }
                try await Task.sleep(for: .milliseconds(500))
                let working = open.count - 1
                let perConnection = Double(relay.residentBytes() &- baseline) / Double(max(1, working)) / 1024
                self.progress("  \(launcher.name) \(working) idle sessions (\(failures) failed): \(String(format: "%.1f", perConnection)) KiB RSS each")
                results.append(Measurement(scenario: "idle", metric: "\(step) sessions: working", unit: "sessions", path: launcher.name, value: Double(working), higherIsBetter: true))
                results.append(Measurement(scenario: "idle", metric: "\(step) sessions: RSS per session", unit: "KiB", path: launcher.name, value: perConnection, higherIsBetter: false))
            }
            for connection in open { await connection.close() }
            await relay.stop()
        }
        return results
    }
}
