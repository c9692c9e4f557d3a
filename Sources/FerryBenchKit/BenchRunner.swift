import Foundation
import NIOCore
import NIOPosix
import FerryCore

/// Runs the scenarios of ``BenchOptions`` against plain TCP and each relay, in one process and one run,
/// so that every ratio compares numbers taken under the same conditions.
public struct BenchRunner: Sendable {
    public var options: BenchOptions
    public var progress: @Sendable (String) -> Void

    public init(options: BenchOptions, progress: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.progress = progress
    }

    var group: EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

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
            case .client: measurements += try await self.client(backends)
            case .auth: measurements += try await self.auth()
            case .http2: measurements += try await self.http2(backends)
            }
        }
        return measurements
    }

    // MARK: Shared by the scenarios

    /// Plain TCP first, then (with `tcpRelays`) each plain TCP relay, then each relay, each against
    /// the same backend.
    /// - Parameter ownBackend: each path gets a backend listener of its own (see `BenchBackends.listen`).
    func paths(
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

    /// Opens `count` connections to `endpoint`, one after another.
    func connectMany(_ count: Int, _ endpoint: Endpoint) async throws -> [BenchConnection] {
        var connections: [BenchConnection] = []
        for _ in 0..<count { connections.append(try await BenchConnection.connect(to: endpoint, group: self.group)) }
        return connections
    }

    /// Runs `body` while sampling the relay's RSS every 50 ms; returns the body's result and the peak.
    func sampling<T: Sendable>(_ relay: RunningRelay, _ body: @Sendable () async throws -> T) async throws -> (T, UInt64) {
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
