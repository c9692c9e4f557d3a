import NIOCore

/// The stall scenario: one side pushes and the other reads nothing; the relay's memory growth shows
/// whether backpressure holds or the relay buffers without bound.
extension BenchRunner {
    func stall(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let duration = TimeAmount.seconds(Int64(self.options.stallSeconds))
        for launcher in self.options.relays {
            // Client pushes, backend never reads.
            let up = try await launcher.start(target: backends.stallPort, bufferSize: self.options.relayBufferSize, group: self.group)
            let pusher = try await BenchConnection.connect(to: Endpoint(port: up.port, isWebSocket: true), group: self.group)
            try await Task.sleep(for: .milliseconds(200))
            let upBaseline = up.residentBytes()
            let (pushed, upPeak) = try await self.sampling(up) { try await pusher.push(for: duration) }
            await pusher.close()
            await up.stop()
            let upGrowth = Double(upPeak &- upBaseline) / 1_048_576
            self.progress("  \(launcher.name) client→stalled backend: client got \(pushed / 1_048_576) MiB accepted, relay RSS +\(String(format: "%.2f", upGrowth)) MiB")
            results.append(Measurement(scenario: "stall", metric: "client pushes, backend reads nothing: RSS growth", unit: "MiB", path: launcher.name, value: upGrowth, higherIsBetter: false))

            // Backend pushes, client never reads.
            let down = try await launcher.start(target: backends.sourcePort, bufferSize: self.options.relayBufferSize, group: self.group)
            let reader = try await BenchConnection.connect(to: Endpoint(port: down.port, isWebSocket: true), group: self.group, autoRead: false)
            try await Task.sleep(for: .milliseconds(200))
            let downBaseline = down.residentBytes()
            let (_, downPeak) = try await self.sampling(down) {
                try await reader.requestDownload(count: 1 << 40)
                try await Task.sleep(for: .seconds(self.options.stallSeconds))
            }
            await reader.close()
            await down.stop()
            let downGrowth = Double(downPeak &- downBaseline) / 1_048_576
            self.progress("  \(launcher.name) backend→stalled client: relay RSS +\(String(format: "%.2f", downGrowth)) MiB")
            results.append(Measurement(scenario: "stall", metric: "backend pushes, client reads nothing: RSS growth", unit: "MiB", path: launcher.name, value: downGrowth, higherIsBetter: false))
        }
        return results
    }
}
