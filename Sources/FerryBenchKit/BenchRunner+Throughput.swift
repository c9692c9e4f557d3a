import NIOCore

/// The throughput scenario: bulk upload and download through each path, over one connection and over
/// several at once, with the relay's CPU per GiB where the relay is a process of its own.
extension BenchRunner {
    func throughput(_ backends: BenchBackends) async throws -> [Measurement] {
        var results: [Measurement] = []
        let total = self.options.bulkBytes
        let parallel = self.options.parallelConnections
        let messageSize = self.options.messageSize
        func record(_ metric: String, _ path: String, bytes: Int, seconds: Double, cpuPerGiB: Double? = nil) {
            let mbps = Double(bytes) / seconds / 1_000_000
            var line = "  \(path) \(metric): \(String(format: "%.0f", mbps)) MB/s"
            results.append(Measurement(scenario: "throughput", metric: metric, unit: "MB/s", path: path, value: mbps, higherIsBetter: true))
            if let cpuPerGiB {
                line += String(format: ", relay CPU %.0f ms per GiB", cpuPerGiB)
                results.append(Measurement(scenario: "throughput", metric: "relay CPU, \(metric)", unit: "ms/GiB", path: path, value: cpuPerGiB, higherIsBetter: false))
            }
            self.progress(line)
        }
        try await self.paths(.sink, backends, tcpRelays: true) { path, endpoint, relay in
            let one = try await BenchConnection.connect(to: endpoint, group: self.group)
            let (seconds, cpu) = try await timedTransfer(bytes: total, relay: relay) { try await one.upload(count: total, messageSize: messageSize) }
            await one.close()
            record("upload, 1 connection", path, bytes: total, seconds: seconds, cpuPerGiB: cpu)
            let many = try await self.connectMany(parallel, endpoint)
            let share = total / parallel
            let parallelSeconds = try await timed {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for connection in many { tasks.addTask { try await connection.upload(count: share, messageSize: messageSize) } }
                    try await tasks.waitForAll()
                }
            }
            for connection in many { await connection.close() }
            record("upload, \(parallel) connections", path, bytes: share * parallel, seconds: parallelSeconds)
        }
        try await self.paths(.source, backends, tcpRelays: true) { path, endpoint, relay in
            let one = try await BenchConnection.connect(to: endpoint, group: self.group)
            let (seconds, cpu) = try await timedTransfer(bytes: total, relay: relay) { try await one.download(count: total) }
            await one.close()
            record("download, 1 connection", path, bytes: total, seconds: seconds, cpuPerGiB: cpu)
            let many = try await self.connectMany(parallel, endpoint)
            let share = total / parallel
            let parallelSeconds = try await timed {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for connection in many { tasks.addTask { try await connection.download(count: share) } }
                    try await tasks.waitForAll()
                }
            }
            for connection in many { await connection.close() }
            record("download, \(parallel) connections", path, bytes: share * parallel, seconds: parallelSeconds)
        }
        return results
    }
}
