import FerryCore
import NIOCore

/// The hostile scenario: whether a relay's memory stays bounded when clients do not play along.
extension BenchRunner {
    /// Memory under clients that mean harm or just misbehave: one client that floods pings and never
    /// reads; many clients that ask for data and never read it; a burst of sessions that all end,
    /// then quiet (does the relay give the memory back?).
    func hostile(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let mib = { (bytes: UInt64, base: UInt64) in Double(bytes &- base) / 1_048_576 }
        func record(_ metric: String, _ unit: String, _ path: String, _ value: Double) {
            results.append(Measurement(scenario: "hostile", metric: metric, unit: unit, path: path, value: value, higherIsBetter: false))
        }
        for launcher in self.options.relays {
            // A ping flood from a client that reads nothing.
            let echo = try await BenchBackends.listen(.echo, group: self.group)
            defer { echo.close(promise: nil) }
            let pinged = try await launcher.start(target: echo.localAddress!.port!, bufferSize: self.options.relayBufferSize, group: self.group)
            let flooder = try await BenchConnection.connect(to: Endpoint(port: pinged.port, isWebSocket: true), group: self.group, autoRead: false)
            try await Task.sleep(for: .milliseconds(200))
            let pingBaseline = pinged.residentBytes()
            let (sent, pingPeak) = try await self.sampling(pinged) { try await flooder.pushPings(for: .seconds(Int64(self.options.stallSeconds))) }
            await flooder.close()
            await pinged.stop()
            self.progress("  \(launcher.name) ping flood: \(sent >> 20) MiB of pings taken, relay RSS +\(String(format: "%.2f", mib(pingPeak, pingBaseline))) MiB")
            record("one client floods pings, reads nothing: RSS growth", "MiB", launcher.name, mib(pingPeak, pingBaseline))

            // Many clients that ask for endless data and read none of it.
            let source = try await launcher.start(target: backends.sourcePort, bufferSize: self.options.relayBufferSize, group: self.group)
            try await Task.sleep(for: .milliseconds(200))
            let stalledBaseline = source.residentBytes()
            var readers: [BenchConnection] = []
            for _ in 0..<self.options.nonReadingClients {
                guard let reader = try? await BenchConnection.connect(to: Endpoint(port: source.port, isWebSocket: true), group: self.group, autoRead: false) else { break }
                try await reader.requestDownload(count: 1 << 40)
                readers.append(reader)
            }
            let (_, stalledPeak) = try await self.sampling(source) { try await Task.sleep(for: .seconds(Int64(self.options.stallSeconds))) }
            for reader in readers { await reader.close() }
            await source.stop()
            let perReader = Double(stalledPeak &- stalledBaseline) / Double(max(1, readers.count)) / 1024
            self.progress("  \(launcher.name) \(readers.count) clients not reading: relay RSS +\(String(format: "%.0f", perReader)) KiB each")
            record("\(self.options.nonReadingClients) clients not reading: RSS growth per client", "KiB", launcher.name, perReader)

            // A burst of sessions, all ended, then quiet.
            let burstEcho = try await BenchBackends.listen(.echo, group: self.group)
            defer { burstEcho.close(promise: nil) }
            let burst = try await launcher.start(target: burstEcho.localAddress!.port!, bufferSize: self.options.relayBufferSize, group: self.group)
            try await Task.sleep(for: .milliseconds(200))
            let burstBaseline = burst.residentBytes()
            let count = min(self.options.burstSessions, max(1, (FileLimit.current() - 256) / 2))
            var open: [BenchConnection] = []
            while open.count < count {
                let batch = min(200, count - open.count)
                let made = await withTaskGroup(of: BenchConnection?.self) { tasks in
                    for _ in 0..<batch {
                        tasks.addTask {
                            guard let connection = try? await BenchConnection.connect(to: Endpoint(port: burst.port, isWebSocket: true), group: self.group) else { return nil }
                            // Some traffic, so each session's buffers are really used.
                            guard (try? await connection.echo(size: 16 * 1024)) != nil else { await connection.close(); return nil }
                            return connection
                        }
                    }
                    var made: [BenchConnection] = []
                    for await connection in tasks { if let connection { made.append(connection) } }
                    return made
                }
                open += made
                if made.isEmpty { break }
            }
            let atPeak = burst.residentBytes()
            for connection in open { await connection.close() }
            try await Task.sleep(for: .nanoseconds(self.options.afterBurstWait.nanoseconds))
            let after = burst.residentBytes()
            await burst.stop()
            self.progress("  \(launcher.name) burst of \(open.count) sessions: relay RSS +\(String(format: "%.1f", mib(atPeak, burstBaseline))) MiB at the peak, +\(String(format: "%.1f", mib(after, burstBaseline))) MiB \(self.options.afterBurstWait.nanoseconds / 1_000_000_000) s after they ended")
            record("burst of \(self.options.burstSessions) sessions: RSS growth at the peak", "MiB", launcher.name, mib(atPeak, burstBaseline))
            record("burst of \(self.options.burstSessions) sessions: RSS growth after they ended", "MiB", launcher.name, mib(after, burstBaseline))
        }
        return results
    }
}
