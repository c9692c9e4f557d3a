import Foundation
import Histogram
import NIOWebSocket
import FerryCore
import NIOCore
import NIOPosix

/// Runs the scenarios of ``BenchOptions`` against plain TCP and each relay, in one process and one run,
/// so that every ratio compares numbers taken under the same conditions.
public struct BenchRunner: Sendable {
    public var options: BenchOptions
    public var progress: @Sendable (String) -> Void

    public init(options: BenchOptions, progress: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.progress = progress
    }

    private var group: EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    public func run(command: String) async throws -> BenchReport {
        FileLimit.raiseToHardLimit()
        let backends = try await BenchBackends.start(group: self.group)
        defer { Task { await backends.stop() } }
        var report = BenchReport(date: ISO8601DateFormatter().string(from: Date()), machine: machineDescription(), command: command, measurements: [], targets: [])
        var all: [[Measurement]] = []
        for run in 1...max(1, self.options.runs) {
            if self.options.runs > 1 { self.progress("=== run \(run) of \(self.options.runs)") }
            all.append(try await self.runOnce(backends))
        }
        report.measurements = Self.medians(all)
        report.targets = self.checkTargets(report)
        return report
    }

    /// Each measurement's median over the runs (runs are aligned by scenario, metric and path).
    static func medians(_ runs: [[Measurement]]) -> [Measurement] {
        guard let first = runs.first else { return [] }
        return first.map { measurement in
            var values = runs.compactMap { run in
                run.first { $0.scenario == measurement.scenario && $0.metric == measurement.metric && $0.path == measurement.path }?.value
            }
            values.sort()
            var median = measurement
            let middle = values.count / 2
            median.value = values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
            return median
        }
    }

    private func runOnce(_ backends: BenchBackends) async throws -> [Measurement] {
        var measurements: [Measurement] = []
        for scenario in self.options.scenarios {
            self.progress("== \(scenario.rawValue)")
            switch scenario {
            case .throughput: measurements += try await self.throughput(backends)
            case .latency: measurements += try await self.latency(backends)
            case .idle: measurements += try await self.idle(backends)
            case .handshakes: measurements += try await self.handshakes(backends)
            case .stall: measurements += try await self.stall(backends)
            case .bigframe: measurements += try await self.bigFrame(backends)
            case .unmask: measurements += self.unmask()
            case .tls: measurements += try await self.tls(backends)
            case .hostile: measurements += try await self.hostile(backends)
            }
        }
        return measurements
    }

    // MARK: Scenarios

    /// Plain TCP first, then (with `tcpRelays`) each plain TCP relay, then each relay, each against
    /// the same backend.
    /// - Parameter ownBackend: each path gets a backend listener of its own (see `BenchBackends.listen`).
    private func paths(
        _ backend: BackendKind,
        _ backends: BenchBackends,
        tcpRelays: Bool = false,
        ownBackend: Bool = false,
        _ body: (String, Endpoint, RunningRelay?) async throws -> Void
    ) async throws {
        var listeners: [Channel] = []
        defer { for listener in listeners { listener.close(promise: nil) } }
        func target() async throws -> Int {
            guard ownBackend else { return backends.port(of: backend) }
            let listener = try await BenchBackends.listen(backend, group: self.group)
            listeners.append(listener)
            return listener.localAddress!.port!
        }
        try await body("tcp", Endpoint(port: try await target(), isWebSocket: false), nil)
        for launcher in tcpRelays ? self.options.tcpRelays : [] {
            let relay = try await launcher.start(target: try await target(), bufferSize: nil, group: self.group)
            do {
                try await body(launcher.name, Endpoint(port: relay.port, isWebSocket: false), relay)
            } catch {
                await relay.stop()
                throw error
            }
            await relay.stop()
        }
        for launcher in self.options.relays {
            let relay = try await launcher.start(target: try await target(), bufferSize: self.options.relayBufferSize, group: self.group)
            do {
                try await body(launcher.name, Endpoint(port: relay.port, isWebSocket: true), relay)
            } catch {
                await relay.stop()
                throw error
            }
            await relay.stop()
        }
    }

    private func throughput(_ backends: BenchBackends) async throws -> [Measurement] {
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

    private func latency(_ backends: BenchBackends) async throws -> [Measurement] {
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

    private func idle(_ backends: BenchBackends) async throws -> [Measurement] {
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

    private func handshakes(_ backends: BenchBackends) async throws -> [Measurement] {
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
    private func handshakeRates(_ endpoint: Endpoint, sequential: Int, clients: Int, perClient: Int) async throws -> (Double, Double) {
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

    private func stall(_ backends: BenchBackends) async throws -> [Measurement] {
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

    /// Memory under clients that mean harm or just misbehave: one client that floods pings and never
    /// reads; many clients that ask for data and never read it; a burst of sessions that all end,
    /// then quiet (does the relay give the memory back?).
    private func hostile(_ backends: BenchBackends) async throws -> [Measurement] {
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

    private func bigFrame(_ backends: BenchBackends) async throws -> [Measurement] {
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

    /// TLS against plaintext through the first relay: throughput each way over one connection, and
    /// handshakes per second with ECDSA P-256 and RSA-2048 certificates.
    private func tls(_ backends: BenchBackends) async throws -> [Measurement] {
        guard let launcher = self.options.relays.first else { return [] }
        let certificates = try BenchCertificates.make()
        let client = try BenchCertificates.clientContext()
        var results: [Measurement] = []
        let total = self.options.bulkBytes
        for pair in [nil, certificates.ecdsa, certificates.rsa] as [BenchCertificates.Pair?] {
            let label = pair.map { "wss \($0.name)" } ?? "ws"
            let context = pair == nil ? nil : client
            func record(_ metric: String, _ value: Double, _ unit: String) {
                self.progress("  \(launcher.name) \(label) \(metric): \(Int(value)) \(unit)")
                results.append(Measurement(scenario: "tls", metric: "\(label): \(metric)", unit: unit, path: launcher.name, value: value, higherIsBetter: unit != "ms/GiB"))
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
            let (_, parallel) = try await self.handshakeRates(
                Endpoint(port: relay.port, isWebSocket: true, tls: context),
                sequential: 0,
                clients: self.options.parallelHandshakeClients,
                perClient: self.options.handshakesPerClient
            )
            await relay.stop()
            record("handshakes, \(self.options.parallelHandshakeClients) parallel clients", parallel, "per s")
        }
        return results
    }

    /// Unmasking speed on one core: Ferry's word-wise loop against NIO's byte loop, same buffer.
    private func unmask() -> [Measurement] {
        let size = self.options.unmaskBytes
        let passes = self.options.unmaskPasses
        let key: WebSocketMaskingKey = [0x12, 0x34, 0x56, 0x78]
        let source = ByteBuffer(repeating: 0xA5, count: size)
        var target = ByteBuffer()
        target.reserveCapacity(size)
        var start = NIODeadline.now()
        for pass in 0..<passes {
            target.clear()
            target.writeMasked(source, key: key, phase: pass & 3)
        }
        let ferrySeconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        var nio = source
        start = .now()
        for pass in 0..<max(1, passes / 8) { nio.webSocketUnmask(key, indexOffset: pass & 3) }
        let nioSeconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        let ferryRate = Double(size * passes) / ferrySeconds / 1e9
        let nioRate = Double(size * max(1, passes / 8)) / nioSeconds / 1e9
        self.progress("  unmask: Ferry \(String(format: "%.1f", ferryRate)) GB/s, NIO byte loop \(String(format: "%.2f", nioRate)) GB/s")
        let name = self.options.relays.first?.name ?? "ferry"
        return [
            Measurement(scenario: "unmask", metric: "word-wise unmask, 1 core", unit: "GB/s", path: name, value: ferryRate, higherIsBetter: true),
            Measurement(scenario: "unmask", metric: "NIO byte-loop unmask, 1 core", unit: "GB/s", path: name, value: nioRate, higherIsBetter: true),
        ]
    }

    // MARK: Targets

    private func checkTargets(_ report: BenchReport) -> [TargetCheck] {
        guard let relay = self.options.relays.first?.name else { return [] }
        var checks: [TargetCheck] = []
        func ratio(_ scenario: String, _ metric: String, path: String = relay) -> Double? {
            guard let value = report.value(scenario, metric, path), let base = report.value(scenario, metric, "tcp"), base > 0 else { return nil }
            return value / base
        }
        func add(_ target: String, _ value: Double?, _ format: (Double) -> String, _ met: (Double) -> Bool) {
            guard let value else { return }
            checks.append(TargetCheck(target: target, measured: format(value), met: met(value)))
        }
        let times = { (value: Double) in String(format: "%.2f×", value) }
        // Next to a ratio to TCP, a plain TCP relay's ratio in the same run (when measured): the floor
        // that one more hop sets on this machine, whatever the relay.
        func timesWithFloor(_ scenario: String, _ metric: String) -> (Double) -> String {
            guard let floorRelay = self.options.tcpRelays.first?.name, let floor = ratio(scenario, metric, path: floorRelay) else { return times }
            return { "\(times($0)) (\(floorRelay): \(times(floor)))" }
        }
        for (metric, bound) in [("upload, 1 connection", 0.75), ("download, 1 connection", 0.75)] {
            add("\(metric) ≥ \(bound) × TCP", ratio("throughput", metric), timesWithFloor("throughput", metric)) { $0 >= bound }
        }
        for (percentile, bound) in [("p50", 1.3), ("p99", 1.5)] {
            let metric = "\(self.options.echoSize) B echo RTT \(percentile)"
            add("echo RTT \(percentile) ≤ \(bound) × TCP", ratio("latency", metric), timesWithFloor("latency", metric)) { $0 <= bound }
        }
        if let step = self.options.idleSteps.first(where: { $0 >= 5000 }) ?? self.options.idleSteps.last {
            let working = report.value("idle", "\(step) sessions: working", relay)
            add("\(step) idle sessions all working", working, { String(format: "%.0f", $0) }) { $0 >= Double(step) }
            add("≤ 16 KiB relay RSS per idle session (\(step))", report.value("idle", "\(step) sessions: RSS per session", relay), { String(format: "%.1f KiB", $0) }) { $0 <= 16 }
        }
        let bound = Double(self.options.relayBufferSize) / 1_048_576 + 1
        let mib = { (value: Double) in String(format: "%.2f MiB", value) }
        add("stalled backend: RSS growth ≤ buffer + 1 MiB", report.value("stall", "client pushes, backend reads nothing: RSS growth", relay), mib) { $0 <= bound }
        add("stalled client: RSS growth ≤ buffer + 1 MiB", report.value("stall", "backend pushes, client reads nothing: RSS growth", relay), mib) { $0 <= bound }
        add("one \(self.options.bigFrameBytes >> 20) MiB frame: RSS growth ≤ 4 MiB", report.value("bigframe", "one \(self.options.bigFrameBytes >> 20) MiB frame: RSS growth", relay), mib) { $0 <= 4 }
        add("ping flood, client reads nothing: RSS growth ≤ 16 MiB", report.value("hostile", "one client floods pings, reads nothing: RSS growth", relay), mib) { $0 <= 16 }
        // Per direction: the buffer, plus the one read burst in flight when it fills (2 reads of at most
        // min(128 KiB, half the buffer)).
        let perReaderBound = Double(self.options.relayBufferSize + 2 * min(128 * 1024, self.options.relayBufferSize / 2)) / 1024
        add(
            "clients not reading: RSS growth per client ≤ buffer + one read burst (\(Int(perReaderBound)) KiB)",
            report.value("hostile", "\(self.options.nonReadingClients) clients not reading: RSS growth per client", relay),
            { String(format: "%.0f KiB", $0) }
        ) { $0 <= perReaderBound }
        if let peak = report.value("hostile", "burst of \(self.options.burstSessions) sessions: RSS growth at the peak", relay) {
            add(
                "after a burst, RSS growth ≤ a quarter of the peak's (\(String(format: "%.1f", peak)) MiB)",
                report.value("hostile", "burst of \(self.options.burstSessions) sessions: RSS growth after they ended", relay),
                mib
            ) { $0 <= peak / 4 }
        }
        add("unmasking ≥ 5 GB/s on one core", report.value("unmask", "word-wise unmask, 1 core", relay), { String(format: "%.1f GB/s", $0) }) { $0 >= 5 }
        add("wss handshakes ≥ 500/s with ECDSA P-256", report.value("tls", "wss ECDSA P-256: handshakes, \(self.options.parallelHandshakeClients) parallel clients", relay), { String(format: "%.0f/s", $0) }) { $0 >= 500 }
        add("handshakes ≥ 3000/s with \(self.options.parallelHandshakeClients) clients", report.value("handshakes", "\(self.options.parallelHandshakeClients) parallel clients", relay), { String(format: "%.0f/s", $0) }) { $0 >= 3000 }
        return checks
    }

    // MARK: Helpers

    private func connectMany(_ count: Int, _ endpoint: Endpoint) async throws -> [BenchConnection] {
        var connections: [BenchConnection] = []
        for _ in 0..<count { connections.append(try await BenchConnection.connect(to: endpoint, group: self.group)) }
        return connections
    }

    /// Runs `body` while sampling the relay's RSS every 50 ms; returns the body's result and the peak.
    private func sampling<T: Sendable>(_ relay: RunningRelay, _ body: @Sendable () async throws -> T) async throws -> (T, UInt64) {
        let sampler = Task {
            var peak = relay.residentBytes()
            while !Task.isCancelled {
                peak = max(peak, relay.residentBytes())
                try? await Task.sleep(for: .milliseconds(50))
            }
            return peak
        }
        let result = try await body()
        let final = relay.residentBytes()
        sampler.cancel()
        return (result, max(final, await sampler.value))
    }
}

func timed(_ body: () async throws -> Void) async throws -> Double {
    let start = NIODeadline.now()
    try await body()
    return Double((NIODeadline.now() - start).nanoseconds) / 1e9
}

/// Runs a transfer of `bytes`: its seconds, and the relay's CPU milliseconds per GiB over it (nil
/// without a relay process). CPU per GiB is steadier than MB/s on a shared machine: it does not
/// depend on how much CPU the client and the backends got meanwhile. It is read before the caller
/// closes the connection, while a forking relay's child still lives.
func timedTransfer(bytes: Int, relay: RunningRelay?, _ body: () async throws -> Void) async throws -> (seconds: Double, cpuPerGiB: Double?) {
    let before = relay?.cpuNanoseconds()
    let seconds = try await timed(body)
    guard let before, let after = relay?.cpuNanoseconds() else { return (seconds, nil) }
    return (seconds, Double(after &- before) / 1e6 / (Double(bytes) / Double(1 << 30)))
}

func machineDescription() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory >> 30) GiB"
}
