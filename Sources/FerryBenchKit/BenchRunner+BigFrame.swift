import Foundation

/// The bigframe scenario: one huge WebSocket frame streamed to a sink, to show whether a relay passes
/// a frame through piece by piece or collects it whole.
extension BenchRunner {
    func bigFrame(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let size = self.options.bigFrameBytes
        for launcher in self.options.relays {
            let relay = try await launcher.start(target: backends.sinkPort, bufferSize: self.options.relayBufferSize, group: self.group)
            let connection = try await BenchConnection.connect(to: Endpoint(port: relay.port, isWebSocket: true), group: self.group)
            try await Task.sleep(for: .milliseconds(200))
            let baseline = relay.residentBytes()
            let started = Date()
            let peak: UInt64
            do {
                (_, peak) = try await self.sampling(relay) { try await connection.uploadSingleFrame(count: size) }
            } catch {
                // A relay that cannot pass the frame (websockify collects whole messages) is reported, not fatal.
                self.progress("  \(launcher.name) one \(size >> 20) MiB frame: failed (\(error)); RSS was \(relay.residentBytes() >> 20) MiB")
                await connection.close()
                await relay.stop()
                continue
            }
            let seconds = Date().timeIntervalSince(started)
            await connection.close()
            await relay.stop()
            let growth = Double(peak &- baseline) / 1_048_576
            self.progress("  \(launcher.name) one \(size >> 20) MiB frame: relay RSS +\(String(format: "%.2f", growth)) MiB, \(String(format: "%.0f", Double(size) / seconds / 1_000_000)) MB/s")
            results.append(Measurement(scenario: "bigframe", metric: "one \(size >> 20) MiB frame: RSS growth", unit: "MiB", path: launcher.name, value: growth, higherIsBetter: false))
        }
        return results
    }
}
