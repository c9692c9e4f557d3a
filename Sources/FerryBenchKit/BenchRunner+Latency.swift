import Histogram

/// The latency scenario: small echo round trips through each path, as percentiles: what a relay adds
/// to every keystroke or screen update that crosses it.
extension BenchRunner {
    func latency(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let count = self.options.echoCount
        let size = self.options.echoSize
        try await self.paths(.echo, backends, tcpRelays: true) { path, endpoint, _ in
            let connection = try await BenchConnection.connect(to: endpoint, group: self.group)
            for _ in 0..<min(1000, count / 10) { _ = try await connection.echo(size: size) }
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for _ in 0..<count { _ = histogram.record(try await connection.echo(size: size)) }
            await connection.close()
            for (label, value) in [
                ("p50", histogram.valueAtPercentile(50)), ("p99", histogram.valueAtPercentile(99)),
                ("p99.9", histogram.valueAtPercentile(99.9)), ("max", histogram.max),
            ] {
                let micros = Double(value) / 1000
                results.append(Measurement(scenario: "latency", metric: "\(size) B echo RTT \(label)", unit: "µs", path: path, value: micros, higherIsBetter: false))
            }
            self.progress("  \(path) echo RTT p50 \(Double(histogram.valueAtPercentile(50)) / 1000) µs, p99 \(Double(histogram.valueAtPercentile(99)) / 1000) µs")
        }
        return results
    }
}
