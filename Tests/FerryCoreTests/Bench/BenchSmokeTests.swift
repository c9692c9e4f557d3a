import FerryBenchKit
import Testing

/// A quick run of the benchmark tool's every scenario (tiny sizes, relay in-process), so the tool
/// cannot rot. It checks that each scenario produced numbers, not what they are: speed is measured
/// with `ferry-bench`, not in tests.
@Suite("Benchmark smoke run")
struct BenchSmokeTests {
    @Test func quickRunProducesEveryScenario() async throws {
        var options = BenchOptions.quick(relays: [.inProcess])
        options.stallSeconds = 1
        let ferry = try #require(FerryExecutable.path, "the ferry executable is built with the tests")
        options.ferryExecutable = ferry
        options.redisServer = OutsideTools.program("redis-server")
        options.clients = [.command(name: "ferry connect", template: "\(ferry) connect ws://{target}/ --listen 127.0.0.1:{port} --log-level error")]
        // ferry-bench is built next to ferry; its minimal relay is the handshakes scenario's floor.
        let bench = String(ferry.dropLast("ferry".count)) + "ferry-bench"
        options.floorRelay = .command(name: "floor", template: "\(bench) --serve-minimal-relay 127.0.0.1:{port} --minimal-relay-target {target}")
        let runner = BenchRunner(options: options) { _ in }
        let report = try await runner.run(command: "smoke")
        for scenario in BenchOptions.Scenario.allCases {
            #expect(report.measurements.contains { $0.scenario == scenario.rawValue }, "no \(scenario) figures")
        }
        let relay = RelayLauncher.inProcess.name
        #expect((report.value("throughput", "upload, 1 connection", relay) ?? 0) > 0)
        #expect((report.value("throughput", "download, 1 connection", "tcp") ?? 0) > 0)
        #expect(report.value("idle", "50 sessions: working", relay) == 50)
        #expect((report.value("client", "upload, 1 connection", "ferry connect") ?? 0) > 0)
        // Each authorization source let the lean client in; without caching, one request per handshake.
        for source in ["--token-file", "--auth-url, cache off", "--auth-url, cache on"] {
            #expect((report.value("auth", "sequential", "ferry: \(source)") ?? 0) > 0, "no handshakes with \(source)")
        }
        #expect(report.value("auth", "requests to the service per handshake", "ferry: --auth-url, cache off") == 1)
        #expect((report.value("auth", "requests to the service per handshake", "ferry: --auth-url, cache on") ?? 1) < 0.5)
        if options.redisServer != nil {
            #expect((report.value("auth", "sequential", "ferry: --token-redis") ?? 0) > 0)
        }
        #expect((report.value("http2", "upload, 1 session", "wss HTTP/2") ?? 0) > 0)
        #expect((report.value("http2", "new sessions, one at a time", "wss HTTP/2") ?? 0) > 0)
        #expect((report.value("handshakes", "sequential", "floor") ?? 0) > 0, "the minimal relay made no handshakes")
        #expect(report.measurements.contains { $0.scenario == "latency" && $0.path == "floor" && $0.value > 0 }, "no round trips through the minimal relay")
        #expect(!report.targets.isEmpty)
        #expect(report.table().contains("ferry (in-process)/tcp"))
        #expect(report.svgChart().hasPrefix("<svg"))
    }
}
