import NIOSSL

/// The tls scenario: what serving `wss://` costs against `ws://`, through the first relay.
extension BenchRunner {
    /// TLS against plaintext through the first relay: throughput each way over one connection,
    /// handshakes per second with ECDSA P-256 and RSA-2048 certificates, and the relay's CPU per
    /// handshake. The same relay and client serve `ws` first, so a `wss` handshake's CPU beyond the
    /// `ws` one is the TLS work, and the `ws` figure over the `wss` one is the relay's own share.
    func tls(_ backends: BenchBackends) async throws -> [Measurement] {
        guard let launcher = self.options.relays.first else { return [] }
        let certificates = try BenchCertificates.make()
        defer { certificates.remove() }
        let client = try BenchCertificates.clientContext()
        var results: [Measurement] = []
        let total = self.options.bulkBytes
        var plainHandshakeCPU: Double?
        for pair in [nil, certificates.ecdsa, certificates.rsa] as [BenchCertificates.Pair?] {
            let label = pair.map { "wss \($0.name)" } ?? "ws"
            let context = pair == nil ? nil : client
            func record(_ metric: String, _ value: Double, _ unit: String) {
                self.progress("  \(launcher.name) \(label) \(metric): \(Int(value)) \(unit)")
                results.append(Measurement(scenario: "tls", metric: "\(label): \(metric)", unit: unit, path: launcher.name, value: value, higherIsBetter: unit == "MB/s" || unit == "per s"))
            }
            for (kind, metric) in [(BackendKind.sink, "upload, 1 connection"), (.source, "download, 1 connection")] {
                let relay = try await launcher.start(target: backends.port(of: kind), bufferSize: self.options.relayBufferSize, tls: pair, group: self.group)
                let connection = try await BenchConnection.connect(to: Endpoint(port: relay.port, isWebSocket: true, tls: context), group: self.group)
                let (seconds, cpu) = try await timedTransfer(bytes: total, relay: relay) {
                    if kind == .sink {
                        try await connection.upload(count: total, messageSize: self.options.messageSize)
                    } else {
                        try await connection.download(count: total)
                    }
                }
                await connection.close()
                await relay.stop()
                record(metric, Double(total) / seconds / 1_000_000, "MB/s")
                if let cpu { record("relay CPU, \(metric)", cpu, "ms/GiB") }
            }
            let echo = try await BenchBackends.listen(.echo, group: self.group)
            defer { echo.close(promise: nil) }
            let relay = try await launcher.start(target: echo.localAddress!.port!, bufferSize: self.options.relayBufferSize, tls: pair, group: self.group)
            let rates = try await self.handshakeRates(
                Endpoint(port: relay.port, isWebSocket: true, tls: context),
                sequential: 0,
                clients: self.options.parallelHandshakeClients,
                perClient: self.options.handshakesPerClient,
                relay: relay
            )
            await relay.stop()
            record("handshakes, \(self.options.parallelHandshakeClients) parallel clients", rates.parallel, "per s")
            if let cpu = rates.relayCPUMicros {
                record("relay CPU per handshake", cpu, "µs")
                if pair == nil {
                    plainHandshakeCPU = cpu
                } else if let plain = plainHandshakeCPU, cpu > 0 {
                    record("relay's own share of a handshake's CPU (ws over wss)", min(plain / cpu, 1) * 100, "%")
                }
            }
        }
        return results
    }
}
