import Foundation
import NIOCore

/// The auth scenario: what deciding who may connect costs per handshake, one source at a time, each in
/// a `ferry` process of its own in front of the same echo backend, measured with the lean handshake
/// client (the token travels as `?token=`):
/// - a route with no authorization (the floor),
/// - `--token-file`,
/// - `--auth-url` with caching off (`--auth-cache-max 0`: every handshake asks the service) and on
///   (the service's answers say `max-age=60`),
/// - `--token-redis` (when `redis-server` is installed).
/// Beside the rates: how many requests the service saw per handshake, how many connections the relay
/// opened to it, and the service's own round trip measured straight, so that "one round trip per
/// uncached handshake" can be read off the added time per handshake.
extension BenchRunner {
    func auth() async throws -> [Measurement] {
        guard let ferry = self.options.ferryExecutable else {
            self.progress("  skipped: no ferry executable to start with authorization flags")
            return []
        }
        let echo = try await BenchBackends.listen(.echo, group: self.group)
        defer { echo.close(promise: nil) }
        let target = "127.0.0.1:\(echo.localAddress!.port!)"
        let token = "bench-\(UUID().uuidString.prefix(8))"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bench-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenFile = folder.appendingPathComponent("tokens").path
        try "\(token): \(target)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)

        let service = try await BenchAuthService.start(target: target, group: self.group)
        defer { Task { await service.stop() } }
        var redis: BenchRedis?
        if let program = self.options.redisServer {
            let started = try await BenchRedis.start(program: program, port: try RelayLauncher.freePort())
            try started.command(["SET", "bench:\(token)", target])
            redis = started
        } else {
            self.progress("  --token-redis row skipped: redis-server not found (apt-get install redis-server)")
        }
        defer { redis?.stop() }

        let base = "\(ferry) --listen 127.0.0.1:{port} --log-level error --max-connections 100000"
        let dynamic = "--route /=dynamic,auth=token --allow-target \(target)"
        let callback = "--route /=dynamic,auth=url --allow-target \(target) --auth-url http://127.0.0.1:\(service.port)/check"
        var rows: [(name: String, arguments: String, asksService: Bool)] = [
            ("route, no authorization", "--route /=\(target)", false),
            ("--token-file", "\(dynamic) --token-file \(tokenFile)", false),
            ("--auth-url, cache off", "\(callback) --auth-cache-max 0", true),
            ("--auth-url, cache on", callback, true),
        ]
        if let redis {
            rows.append(("--token-redis", "\(dynamic) --token-redis redis://127.0.0.1:\(redis.port)/0?namespace=bench", false))
        }

        var results: [Measurement] = []
        let clients = self.options.parallelHandshakeClients
        func record(_ metric: String, _ unit: String, _ path: String, _ value: Double, higherIsBetter: Bool) {
            results.append(Measurement(scenario: "auth", metric: metric, unit: unit, path: path, value: value, higherIsBetter: higherIsBetter))
        }
        let roundTrip = try Self.serviceRoundTrip(port: service.port, count: self.options.sequentialHandshakes)
        record("one request to the service, kept-alive connection, p50", "µs", "callback service", roundTrip / 1000, higherIsBetter: false)
        self.progress("  callback service: one request \(Int(roundTrip / 1000)) µs (p50, straight)")

        var floor: Double?
        for row in rows {
            let name = "ferry: \(row.name)"
            let relay = try await RelayLauncher.command(name: name, template: "\(base) \(row.arguments)")
                .start(target: 0, bufferSize: nil, group: self.group)
            let requestsBefore = service.requests
            let connectionsBefore = service.connections
            let rates: (sequential: LeanHandshakeClient.Result, parallel: LeanHandshakeClient.Result, relayCPUMicros: Double?)
            do {
                rates = try await self.leanHandshakes(port: relay.port, mode: .webSocket, path: "/?token=\(token)", relay: relay)
            } catch {
                await relay.stop()
                throw error
            }
            await relay.stop()
            let p50 = rates.sequential.percentile(0.5) / 1000
            record("sequential", "per s", name, rates.sequential.perSecond, higherIsBetter: true)
            record("\(clients) parallel clients", "per s", name, rates.parallel.perSecond, higherIsBetter: true)
            record("sequential: time per handshake p50", "µs", name, p50, higherIsBetter: false)
            if let cpu = rates.relayCPUMicros {
                record("relay CPU per handshake (\(clients) clients)", "µs", name, cpu, higherIsBetter: false)
            }
            var line = "  \(name): \(Int(rates.sequential.perSecond))/s sequential (p50 \(Int(p50)) µs), \(Int(rates.parallel.perSecond))/s with \(clients) clients"
            if let floor { line += ", +\(Int(p50 - floor)) µs per handshake over no authorization" } else { floor = p50 }
            if row.asksService {
                let handshakes = rates.sequential.completed + rates.parallel.completed
                let asked = service.requests - requestsBefore
                let perHandshake = Double(asked) / Double(max(handshakes, 1))
                let connections = service.connections - connectionsBefore
                record("requests to the service per handshake", "", name, perHandshake, higherIsBetter: false)
                record("connections opened to the service", "", name, Double(connections), higherIsBetter: false)
                line += "; \(String(format: "%.3f", perHandshake)) requests per handshake over \(connections) connections"
            }
            let failures = rates.sequential.failed + rates.parallel.failed
            if failures > 0 { line += "; \(failures) failed (first: \(rates.sequential.firstError ?? rates.parallel.firstError ?? "?"))" }
            self.progress(line)
        }
        return results
    }

    /// The service's own round trip, measured straight: `count` requests one after another on one
    /// kept-alive connection; the median in nanoseconds.
    private static func serviceRoundTrip(port: Int, count: Int) throws -> Double {
        let socket = try BlockingSocket(port: port)
        defer { socket.close() }
        let request = Array("GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var durations: [UInt64] = []
        durations.reserveCapacity(count)
        try request.withUnsafeBytes { bytes in
            for _ in 0..<max(count, 1) {
                let began = monotonicNanoseconds()
                try socket.writeAll(bytes)
                // The answer has no body (Content-Length: 0): its head's blank line ends it.
                var end = HeaderEndFinder()
                while !end.found {
                    let read = try socket.read(into: buffer)
                    guard read > 0 else { throw LeanClientError.closedEarly("the service closed its connection") }
                    end.scan(UnsafeRawBufferPointer(rebasing: buffer[..<read]))
                }
                durations.append(monotonicNanoseconds() - began)
            }
        }
        durations.sort()
        return Double(sortedPercentile(durations, 0.5))
    }
}
