/// The latency scenario: small echo round trips through each path, as percentiles: what a relay adds
/// to every keystroke or screen update that crosses it. Measured with the lean echo client (a
/// blocking socket on a thread of its own), whose own share of a round trip is a send and a recv.
extension BenchRunner {
    func latency(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let count = self.options.echoCount
        let size = self.options.echoSize
        func measure(_ path: String, _ endpoint: Endpoint) async throws {
            let client = LeanEchoClient(port: endpoint.port, isWebSocket: endpoint.isWebSocket)
            let durations = try await client.roundTrips(count: count, size: size, warmUp: min(1000, count / 10))
            func at(_ fraction: Double) -> UInt64 { sortedPercentile(durations, fraction) }
            for (label, value) in [("p50", at(0.5)), ("p99", at(0.99)), ("p99.9", at(0.999)), ("max", durations.last ?? 0)] {
                let micros = Double(value) / 1000
                results.append(Measurement(scenario: "latency", metric: "\(size) B echo RTT \(label)", unit: "µs", path: path, value: micros, higherIsBetter: false))
            }
            self.progress("  \(path) echo RTT p50 \(Double(at(0.5)) / 1000) µs, p99 \(Double(at(0.99)) / 1000) µs")
        }
        try await self.paths(.echo, backends, tcpRelays: true) { path, endpoint, _ in
            try await measure(path, endpoint)
        }
        // The floor of a relay on NIO's channels (MinimalWebSocketRelay), after the relays.
        try await self.throughFloorRelay("round trips") { name, relay in
            try await measure(name, Endpoint(port: relay.port, isWebSocket: true))
        }
        return results
    }
}
