import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension OperationsTests {
    /// `/healthz`, `/readyz` and the admin port's `/metrics`, over real sockets.
    @Suite("Health, readiness and metrics (real sockets)")
    struct ObservabilityTests {
        @Test("/healthz answers 200 ok; /readyz answers 200 while running")
        func healthAndReady() async throws {
            try await ProductionRelay.with(routes: [Route(path: "/ws", target: .tcp(host: "127.0.0.1", port: 9))]) { relay in
                let health = try await PlainHTTP.get(relay.address, path: "/healthz")
                #expect(health.status == 200, "\(health)")
                #expect(health.body == "ok\n")
                #expect(health.value("Content-Type")?.hasPrefix("text/plain") == true)

                let ready = try await PlainHTTP.get(relay.address, path: "/readyz")
                #expect(ready.status == 200, "\(ready)")
                #expect(ready.body == "ready\n")
                #expect(relay.server.environment.readiness.state == .ready)

                // A query string does not change the answer; another path is not a health check.
                #expect(try await PlainHTTP.get(relay.address, path: "/readyz?verbose=1").status == 200)
                #expect(try await PlainHTTP.get(relay.address, path: "/healthz/x").status == 404)
            }
        }

        @Test("/readyz answers 503 once server.stop() has begun (asked on a connection opened before)")
        func readyAfterStop() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let server = try ProductionRelay.server(routes: [Route(path: "/", target: backend.target)])
            let relay = RunningRelay(server: server, addresses: try await server.start())
            let session = try await WSTestClient.upgrade(relay)
            let probe = try await WSTestClient.open(to: relay.address)
            // Everything but the final CRLF, so the request completes only after stop() begins.
            try await probe.sendRaw(Array("GET /readyz HTTP/1.1\r\nHost: x\r\n".utf8))
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.environment.readiness.state == .ready)

            let stopping = Task { await server.stop(timeout: .seconds(3)) }
            do {
                // stop() has reached the sessions when the live one is told the server is going away.
                let close = try await session.waitForClose(timeout: .seconds(5))
                #expect(close == WSCloseInfo(code: 1001, reason: "going away"))
                #expect(server.environment.readiness.state == .draining)
                try await probe.sendRaw(Array("\r\n".utf8))
                let response = try await probe.readResponse(timeout: .seconds(5))
                #expect(response.status == 503, "\(response)")
                #expect(response.body == "draining\n")
                try await session.sendClose(code: 1001)
            } catch {
                Issue.record("\(error)")
            }
            await session.shutdown()
            await probe.shutdown()
            await stopping.value
            #expect(server.environment.registry.count == 0)
        }

        @Test("metrics: exact counts after a known sequence of sessions and refusals; /metrics only on the admin port")
        func metricsExposition() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await ProductionRelay.with(
                routes: [Route(path: "/a", target: backend.target)],
                adminListen: ListenAddress(host: "127.0.0.1", port: 0)
            ) { relay in
                let admin = try #require(relay.server.adminAddress)
                #expect(admin.port != relay.address.port)

                // Before anything: no sessions counted, not draining.
                let initial = PrometheusSamples(try await self.scrape(admin))
                #expect(initial.value("ferry_sessions_total", [("route", "/a")]) ?? 0 == 0, "\(initial)")
                #expect(initial.value("ferry_draining") ?? 0 == 0, "\(initial)")

                // Two sessions with known payloads: 100 bytes, then 1000 + 234 bytes, each echoed in full.
                var sent = 0
                for sizes in [[100], [1000, 234]] {
                    let client = try await WSTestClient.upgrade(relay, path: "/a")
                    for size in sizes {
                        let payload = BytePattern(seed: UInt64(size)).bytes(at: 0, count: size)
                        try await client.send(binary: payload)
                        let echoed = try await client.receiveBytes(count: size)
                        #expect(Array(echoed.readableBytesView) == payload)
                        sent += size
                    }
                    #expect(try await client.close().code == 1000)
                    await client.shutdown()
                }
                #expect(sent == 1334)

                // One 404 (no route) and one 403 (Origin refused).
                let notFound = try await WSTestClient.connect(to: relay, path: "/nowhere")
                #expect(notFound.response.status == 404)
                await notFound.shutdown()
                let forbidden = try await WSTestClient.connect(to: relay, path: "/a", headers: [("Origin", "https://evil.example")])
                #expect(forbidden.response.status == 403)
                await forbidden.shutdown()

                // The sessions' ends are counted once both sides have closed.
                var samples = PrometheusSamples("")
                let settled = await self.eventuallyScrape(admin) { candidate in
                    samples = candidate
                    return candidate.value("ferry_sessions_active", [("route", "/a")]) == 0
                        && candidate.value("ferry_bytes_total", [("route", "/a"), ("direction", "to_client")]) == 1334
                }
                #expect(settled, "\(samples)")
                #expect(samples.value("ferry_sessions_total", [("route", "/a")]) == 2, "\(samples)")
                #expect(samples.value("ferry_sessions_active", [("route", "/a")]) == 0)
                #expect(samples.value("ferry_bytes_total", [("route", "/a"), ("direction", "to_backend")]) == 1334)
                #expect(samples.value("ferry_bytes_total", [("route", "/a"), ("direction", "to_client")]) == 1334)
                #expect(samples.value("ferry_handshakes_refused_total", [("status", "404")]) == 1, "\(samples)")
                #expect(samples.value("ferry_handshakes_refused_total", [("status", "403")]) == 1)
                #expect(samples.series("ferry_handshakes_refused_total").count == 2, "\(samples.series("ferry_handshakes_refused_total"))")
                #expect(
                    samples.series("ferry_close_codes_total") == [PrometheusSamples.key("ferry_close_codes_total", [("code", "1000"), ("closed_by", "client")]): 2],
                    "\(samples.series("ferry_close_codes_total"))"
                )
                #expect(samples.value("ferry_backend_connect_seconds_count", [("route", "/a")]) == 2)
                #expect(samples.value("ferry_session_duration_seconds_count", [("route", "/a")]) == 2)
                #expect(samples.value("ferry_backend_connect_seconds_bucket", [("route", "/a"), ("le", "+Inf")]) == 2, "\(samples)")
                #expect(samples.value("ferry_draining") ?? 0 == 0)
                #expect(samples.text.contains("# TYPE ferry_sessions_total counter"), "\(samples)")

                // The public listener does not serve metrics: 404, and counted as one.
                let publicMetrics = try await PlainHTTP.get(relay.address, path: "/metrics")
                #expect(publicMetrics.status == 404, "\(publicMetrics)")
                #expect(!publicMetrics.body.contains("ferry_"), "\(publicMetrics)")
                let after = PrometheusSamples(try await self.scrape(admin))
                #expect(after.value("ferry_handshakes_refused_total", [("status", "404")]) == 2, "\(after)")

                // The admin port answers /healthz too, and 404 elsewhere.
                #expect(try await PlainHTTP.get(admin, path: "/healthz").status == 200)
                #expect(try await PlainHTTP.get(admin, path: "/other").status == 404)
            }
        }

        @Test("metrics: ferry_draining turns 1 when the server drains, and the admin port closes after stop()")
        func metricsDraining() async throws {
            let server = try ProductionRelay.server(
                routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))],
                adminListen: ListenAddress(host: "127.0.0.1", port: 0)
            )
            try await server.start()
            let admin = try #require(server.adminAddress)
            #expect(PrometheusSamples(server.metrics.exposition()).value("ferry_draining") ?? 0 == 0)
            await server.stop(timeout: .seconds(1))
            #expect(PrometheusSamples(server.metrics.exposition()).value("ferry_draining") == 1, "\(server.metrics.exposition())")
            #expect(!(await PlainHTTP.canConnect(admin)), "the admin listener is closed by stop()")
        }

        /// `GET /metrics` from the admin port; the body.
        func scrape(_ admin: SocketAddress) async throws -> String {
            let response = try await PlainHTTP.get(admin, path: "/metrics")
            #expect(response.status == 200)
            #expect(response.value("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true, "\(response.headers)")
            return response.body
        }

        /// Scrapes until `condition` holds (or 5 s pass); returns whether it held.
        func eventuallyScrape(_ admin: SocketAddress, _ condition: (PrometheusSamples) -> Bool) async -> Bool {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(5))
            while clock.now < deadline {
                if let text = try? await self.scrape(admin), condition(PrometheusSamples(text)) { return true }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }
}
