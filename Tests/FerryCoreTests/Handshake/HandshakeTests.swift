import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension IntegrationTests {
    /// What the relay answers to opening requests, read off a real socket.
    @Suite("Handshake")
    struct Handshake {
        /// Checks a refusal: the status, a one-line body, `Connection: close`, no upgrade, and the
        /// connection closed by the relay afterwards.
        static func expectRefused(
            _ client: WSTestClient,
            status: Int,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let response = client.response
            #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
            #expect(response.value("Connection")?.lowercased() == "close", sourceLocation: sourceLocation)
            #expect(response.value("Upgrade") == nil, sourceLocation: sourceLocation)
            #expect(response.value("Sec-WebSocket-Accept") == nil, sourceLocation: sourceLocation)
            #expect(!response.body.isEmpty, sourceLocation: sourceLocation)
            #expect(response.value("Content-Length") == "\(response.body.utf8.count)", sourceLocation: sourceLocation)
            let frames = try await client.waitForDisconnect(timeout: .seconds(3))
            #expect(frames.isEmpty, sourceLocation: sourceLocation)
        }

        @Test("404 for a path with no route, and for a plain GET")
        func notFound() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/ws", target: backend.target)]) { relay in
                let noRoute = try await WSTestClient.connect(to: relay, path: "/elsewhere")
                try await Self.expectRefused(noRoute, status: 404)

                // A sibling path that only shares a prefix is not under /ws.
                let prefixOnly = try await WSTestClient.connect(to: relay, path: "/wsx")
                try await Self.expectRefused(prefixOnly, status: 404)

                let plain = try await WSTestClient.open(to: relay.address)
                try await plain.sendRaw(Array("GET /ws HTTP/1.1\r\nHost: \(relay.hostHeader)\r\n\r\n".utf8))
                _ = try await plain.readResponse()
                try await Self.expectRefused(plain, status: 404)

                // The route itself does upgrade, and nothing reached the backend before.
                #expect(backend.accepted == 0)
                let good = try await WSTestClient.upgrade(relay, path: "/ws/sub?x=1")
                await good.shutdown()
                // The relay's connect completes before the backend's event loop has run its accept.
                #expect(await backend.waitForAccepted(1))
                #expect(backend.accepted == 1)
            }
        }

        @Test("403 for a foreign Origin; the relay's own host is allowed")
        func foreignOrigin() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let foreign = try await WSTestClient.connect(to: relay, headers: [("Origin", "https://evil.example")])
                try await Self.expectRefused(foreign, status: 403)
                #expect(backend.accepted == 0, "a refused handshake never reaches the backend")

                let own = try await WSTestClient.connect(to: relay, headers: [("Origin", "http://\(relay.hostHeader)")])
                #expect(own.response.status == 101)
                await own.shutdown()
            }
            let policy = OriginPolicy(allowed: ["https://app.example"])
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], originPolicy: policy) { relay in
                let listed = try await WSTestClient.connect(to: relay, headers: [("Origin", "HTTPS://App.Example")])
                #expect(listed.response.status == 101, "listed origins match case-insensitively")
                await listed.shutdown()

                let other = try await WSTestClient.connect(to: relay, headers: [("Origin", "https://app.example.evil")])
                try await Self.expectRefused(other, status: 403)

                let noOrigin = try await WSTestClient.connect(to: relay)
                #expect(noOrigin.response.status == 101, "non-browser clients send no Origin")
                await noOrigin.shutdown()
            }
        }

        @Test("static pages: 200 for GET, headers only for HEAD, 405 for other methods")
        func staticPages() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let pages = ["/": StaticPage(contentType: "text/html; charset=utf-8", body: "<h1>hi</h1>")]
            try await Relay.with(routes: [Route(path: "/ws", target: backend.target)], staticPages: pages) { relay in
                let get = try await WSTestClient.open(to: relay.address)
                try await get.sendRaw(Array("GET /?q=1 HTTP/1.1\r\nHost: \(relay.hostHeader)\r\n\r\n".utf8))
                let page = try await get.readResponse()
                #expect(page.status == 200)
                #expect(page.body == "<h1>hi</h1>")
                #expect(page.value("Content-Type") == "text/html; charset=utf-8")
                _ = try await get.waitForDisconnect()

                let head = try await WSTestClient.open(to: relay.address)
                try await head.sendRaw(Array("HEAD / HTTP/1.1\r\nHost: \(relay.hostHeader)\r\n\r\n".utf8))
                let headers = try await head.readResponse()
                #expect(headers.status == 200)
                #expect(headers.body.isEmpty)
                #expect(headers.value("Content-Length") == "11")
                await head.shutdown()

                let delete = try await WSTestClient.open(to: relay.address)
                try await delete.sendRaw(Array("DELETE / HTTP/1.1\r\nHost: \(relay.hostHeader)\r\nContent-Length: 0\r\n\r\n".utf8))
                _ = try await delete.readResponse()
                #expect(delete.response.value("Allow") == "GET, HEAD")
                try await Self.expectRefused(delete, status: 405)
            }
        }

        @Test("400 for a bad key, 426 naming version 13, 405 for a POST upgrade")
        func badRequests() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let badKey = try await WSTestClient.connect(to: relay, headers: [("Sec-WebSocket-Key", "not-a-16-byte-key")])
                try await Self.expectRefused(badKey, status: 400)

                let noKey = try await WSTestClient.connect(to: relay, removing: ["Sec-WebSocket-Key"])
                try await Self.expectRefused(noKey, status: 400)

                let oldVersion = try await WSTestClient.connect(to: relay, headers: [("Sec-WebSocket-Version", "8")])
                #expect(oldVersion.response.values("Sec-WebSocket-Version") == ["13"])
                try await Self.expectRefused(oldVersion, status: 426)

                let post = try await WSTestClient.connect(to: relay, method: "POST", headers: [("Content-Length", "0")])
                #expect(post.response.value("Allow") == "GET")
                try await Self.expectRefused(post, status: 405)

                // A body on the upgrade request is tolerated up to 16 KiB, refused beyond.
                let withBody = try await WSTestClient.open(to: relay.address)
                try await withBody.sendHandshake(path: "/", host: relay.hostHeader, headers: [("Content-Length", "20000")])
                try await withBody.sendRaw([UInt8](repeating: 0x7A, count: 20000))
                _ = try await withBody.readResponse()
                try await Self.expectRefused(withBody, status: 413)

                #expect(backend.accepted == 0)
            }
        }

        @Test("browser-style header variants upgrade; HTTP/1.0 does not")
        func headerVariants() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                // Firefox sends "keep-alive, Upgrade"; header names and the token are case-insensitive.
                let firefox = try await WSTestClient.connect(
                    to: relay,
                    headers: [("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket")],
                    removing: ["Connection", "Upgrade"]
                )
                #expect(firefox.response.status == 101, "\(firefox.response)")
                try firefox.checkUpgraded()
                await firefox.shutdown()

                let http10 = try await WSTestClient.open(to: relay.address)
                try await http10.sendRaw(
                    Array(
                        "GET / HTTP/1.0\r\nHost: \(relay.hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                            .utf8
                    )
                )
                _ = try await http10.readResponse()
                try await Self.expectRefused(http10, status: 400)

                let noConnection = try await WSTestClient.connect(to: relay, removing: ["Connection"])
                try await Self.expectRefused(noConnection, status: 400)
            }
        }

        @Test("431 for request headers over maxHeaderSize")
        func headersTooLarge() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.maxHeaderSize = 1024 }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let big = try await WSTestClient.connect(to: relay, headers: [("X-Filler", String(repeating: "a", count: 4000))])
                try await Self.expectRefused(big, status: 431)

                let many = try await WSTestClient.connect(
                    to: relay,
                    headers: (0..<60).map { ("X-Filler-\($0)", String(repeating: "b", count: 30)) }
                )
                try await Self.expectRefused(many, status: 431)

                let small = try await WSTestClient.connect(to: relay, headers: [("X-Filler", String(repeating: "a", count: 100))])
                #expect(small.response.status == 101)
                await small.shutdown()
            }
        }

        @Test("502 and no upgrade when the backend refuses the connection")
        func backendRefuses() async throws {
            let port = try await FreePort.on()
            try await Relay.with(routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: port))]) { relay in
                let client = try await WSTestClient.connect(to: relay)
                try await Self.expectRefused(client, status: 502)
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 }, "the slot is released")
            }
        }

        @Test("504 when the backend does not accept within connectTimeout")
        func backendConnectTimeout() async throws {
            let blackhole = try await TestBackend.blackhole()
            defer { blackhole.close() }
            let limits = Relay.testLimits { $0.connectTimeout = .milliseconds(300) }
            let target = blackhole.target
            try await Relay.with(routes: [Route(path: "/", target: target)], limits: limits) { relay in
                let clock = ContinuousClock()
                let started = clock.now
                let client = try await WSTestClient.connect(to: relay)
                let elapsed = clock.now - started
                try await Self.expectRefused(client, status: 504)
                #expect(elapsed >= .milliseconds(250), "answered after \(elapsed), before the connect timeout")
                #expect(elapsed < .seconds(3))
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }

        @Test("the backend connect ends inside the handshake budget: 504 at the budget, the slot freed at once")
        func handshakeTimeoutDuringConnect() async throws {
            let blackhole = try await TestBackend.blackhole()
            defer { blackhole.close() }
            let limits = Relay.testLimits {
                $0.handshakeTimeout = .milliseconds(300)
                $0.connectTimeout = .milliseconds(1200)
            }
            let target = blackhole.target
            try await Relay.with(routes: [Route(path: "/", target: target)], limits: limits) { relay in
                let clock = ContinuousClock()
                let started = clock.now
                let client = try await WSTestClient.open(to: relay.address)
                try await client.sendHandshake(path: "/", host: relay.hostHeader)
                _ = try await client.waitForDisconnect(timeout: .seconds(3))
                let elapsed = clock.now - started
                #expect(elapsed < .milliseconds(1000), "closed after \(elapsed), not at the handshake timeout")
                #expect(client.receivedResponse?.status == 504, "the client is told, not just hung up on")
                #expect(relay.server.environment.registry.count == 0, "the slot is not held until the connect gives up")
            }
        }

        @Test("503 when maxConnections sessions are open; the slot frees when one ends")
        func tooManyConnections() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.maxConnections = 1 }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let first = try await WSTestClient.upgrade(relay)
                let second = try await WSTestClient.connect(to: relay)
                try await Self.expectRefused(second, status: 503)
                // The relay's connect completes in the kernel before the backend's loop counts the accept.
                #expect(await backend.waitForAccepted(1))
                #expect(backend.accepted == 1, "the refused client opened no backend connection")

                // The first session still works.
                try await first.send(text: "still here")
                #expect(String(buffer: try await first.receiveBytes(count: 10)) == "still here")
                #expect(try await first.close().code == 1000)
                _ = try await first.waitForDisconnect()

                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
                let third = try await WSTestClient.connect(to: relay)
                #expect(third.response.status == 101)
                await third.shutdown()
            }
        }

        @Test("a client that sends nothing is disconnected after the handshake timeout")
        func handshakeTimeoutSilent() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.handshakeTimeout = .milliseconds(300) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let clock = ContinuousClock()
                let started = clock.now
                let client = try await WSTestClient.open(to: relay.address)
                _ = try await client.waitForDisconnect(timeout: .seconds(5))
                let elapsed = clock.now - started
                #expect(elapsed >= .milliseconds(250), "closed after \(elapsed), before the timeout")
                #expect(elapsed < .seconds(3), "closed only after \(elapsed)")
                #expect(backend.accepted == 0)
            }
        }

        @Test("a request trickled a byte at a time is cut off at the handshake timeout")
        func handshakeTimeoutSlowHeaders() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.handshakeTimeout = .milliseconds(300) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let clock = ContinuousClock()
                let started = clock.now
                let client = try await WSTestClient.open(to: relay.address)
                let request = Array(
                    "GET / HTTP/1.1\r\nHost: \(relay.hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        .utf8
                )
                let trickle = Task {
                    for byte in request {
                        guard client.isActive else { return }
                        do {
                            try await client.sendRaw([byte])
                            try await Task.sleep(for: .milliseconds(40))
                        } catch {
                            return
                        }
                    }
                }
                _ = try await client.waitForDisconnect(timeout: .seconds(5))
                trickle.cancel()
                let elapsed = clock.now - started
                #expect(elapsed >= .milliseconds(250), "closed after \(elapsed), before the timeout")
                #expect(elapsed < .seconds(3), "closed only after \(elapsed); the request would take \(request.count * 40) ms")
                #expect(client.receivedResponse?.status != 101)
                #expect(backend.accepted == 0)

                // The deadline covers only the handshake: an upgraded session outlives it.
                let session = try await WSTestClient.upgrade(relay)
                try await Task.sleep(for: .milliseconds(700))
                try await session.send(text: "later")
                #expect(String(buffer: try await session.receiveBytes(count: 5)) == "later")
                #expect(try await session.close().code == 1000)
            }
        }
    }
}
