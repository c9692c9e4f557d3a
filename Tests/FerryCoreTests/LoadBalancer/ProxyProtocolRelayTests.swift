import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension OperationsTests {
    /// PROXY headers in (`--listen ADDR:PORT,proxy-protocol`), PROXY v2 out (`proxy-protocol=v2`
    /// routes), and forwarding headers, over real sockets.
    @Suite("PROXY protocol and forwarding headers (real sockets)")
    struct ProxyProtocolRelayTests {
        static let proxyListener = [ListenAddress(host: "127.0.0.1", port: 0, proxyProtocol: true)]

        /// An upgrade request with a fixed key, for tests that write it in the same packet as a header.
        static let fixedKeyRequest = "GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

        /// Echoes one message through an upgraded client, then closes it cleanly.
        static func echoAndClose(_ client: WSTestClient, _ message: String) async throws {
            try await client.send(binary: Array(message.utf8))
            let echoed = try await client.receiveBytes(count: message.utf8.count, timeout: .seconds(5))
            #expect(String(buffer: echoed) == message)
            let close = try await client.close(timeout: .seconds(5))
            #expect(close.code == 1000)
            await client.shutdown()
        }

        // MARK: PROXY in

        @Test("v1 header (sent in two pieces) then the upgrade: 101, data flows, the log names the PROXY source")
        func v1Accepted() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                let header = PROXYBytes.v1("PROXY TCP4 203.0.113.50 192.0.2.1 41000 443\r\n")
                let client = try await WSTestClient.proxied(relay, prefix: header, splitPrefixAt: 17)
                try client.checkUpgraded()
                try await Self.echoAndClose(client, "through a load balancer")
                let clients = await capture.waitForSessionClients(1)
                #expect(clients == ["203.0.113.50:41000"], "\(capture.text)")
            }
        }

        @Test("v1 header and upgrade request in one write: the bytes after the header reach the HTTP decoder")
        func v1SamePacket() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                let client = try await WSTestClient.open(to: relay.address)
                defer { Task { await client.shutdown() } }
                try await client.sendRaw(PROXYBytes.v1("PROXY TCP6 2001:db8::50 2001:db8::1 41001 443\r\n") + Array(Self.fixedKeyRequest.utf8))
                let response = try await client.readResponse(timeout: .seconds(5))
                #expect(response.status == 101, "\(response)")
                #expect(response.value("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                try await Self.echoAndClose(client, "one packet")
                #expect(await capture.waitForSessionClients(1) == ["[2001:db8::50]:41001"], "\(capture.text)")
            }
        }

        @Test("v2 PROXY (INET6, with a TLV) then the upgrade: 101 and the log names the PROXY source")
        func v2Accepted() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                let v6 = PROXYBytes.v2Inet6(
                    source: PROXYBytes.address("2001:db8::77"),
                    destination: PROXYBytes.address("2001:db8::1"),
                    sourcePort: 5000,
                    destinationPort: 443,
                    tlvs: PROXYBytes.tlv(type: 0x02, value: Array("relay.example".utf8))
                )
                let client = try await WSTestClient.proxied(relay, prefix: v6, splitPrefixAt: 14)
                try client.checkUpgraded()
                try await Self.echoAndClose(client, "v2 inet6")

                let v4 = PROXYBytes.v2Inet(
                    source: PROXYBytes.address("198.51.100.77"),
                    destination: PROXYBytes.address("192.0.2.1"),
                    sourcePort: 6000,
                    destinationPort: 443
                )
                let second = try await WSTestClient.proxied(relay, prefix: v4)
                try second.checkUpgraded()
                try await Self.echoAndClose(second, "v2 inet")
                let clients = await capture.waitForSessionClients(2)
                #expect(Set(clients) == ["[2001:db8::77]:5000", "198.51.100.77:6000"], "\(capture.text)")
            }
        }

        @Test("v2 LOCAL and v1 UNKNOWN: accepted, and the TCP peer stands for the client")
        func localStandsForPeer() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                var peers: [String] = []
                for header in [PROXYBytes.v2(versionCommand: 0x20, familyTransport: 0x00, body: []), PROXYBytes.v1("PROXY UNKNOWN\r\n")] {
                    let client = try await WSTestClient.proxied(relay, prefix: header)
                    try client.checkUpgraded()
                    let local = try #require(client.channel.localAddress)
                    peers.append("127.0.0.1:\(local.port ?? 0)")
                    try await Self.echoAndClose(client, "local")
                    _ = await capture.waitForSessionClients(peers.count)
                }
                #expect(capture.sessionClients == peers, "\(capture.text)")
            }
        }

        @Test("a health check through a PROXY listener still needs the header, then gets 200")
        func healthThroughProxyListener() async throws {
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"]
            ) { relay in
                let client = try await WSTestClient.open(to: relay.address)
                defer { Task { await client.shutdown() } }
                try await client.sendRaw(PROXYBytes.v1("PROXY TCP4 203.0.113.1 192.0.2.1 1 2\r\n") + Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == "ok\n")

                // Without the header the same request gets no answer at all.
                let bare = try await WSTestClient.sendAndAwaitClose(relay, bytes: Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                #expect(bare == nil, "\(bare.map(\.description) ?? "")")
            }
        }

        @Test("no header, garbage or a malformed header: the connection is closed without a response")
        func missingOrBadHeaderClosed() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"]
            ) { relay in
                let inputs: [(String, [UInt8])] = [
                    ("a plain upgrade request", Array(Self.fixedKeyRequest.utf8)),
                    ("garbage", [0xDE, 0xAD, 0xBE, 0xEF] + Array("\r\n\r\n".utf8)),
                    ("a v1 line with a bad port", PROXYBytes.v1("PROXY TCP4 203.0.113.1 192.0.2.1 070 443\r\n") + Array(Self.fixedKeyRequest.utf8)),
                    ("a v1 line with an IPv6 source in TCP4", PROXYBytes.v1("PROXY TCP4 2001:db8::1 192.0.2.1 1 443\r\n") + Array(Self.fixedKeyRequest.utf8)),
                    ("a v2 header with version 1", PROXYBytes.v2(versionCommand: 0x11, familyTransport: 0x11, body: [UInt8](repeating: 1, count: 12))),
                    ("an over-long v1 line", Array(("PROXY UNKNOWN " + String(repeating: "z", count: 200)).utf8)),
                ]
                for (name, bytes) in inputs {
                    let response = try await WSTestClient.sendAndAwaitClose(relay, bytes: bytes, timeout: .seconds(5))
                    #expect(response == nil, "\(name): \(response.map(\.description) ?? "")")
                }
                #expect(backend.accepted == 0, "nothing reached the backend")
                #expect(relay.server.environment.registry.count == 0)
            }
        }

        @Test("a valid header from a peer that is not a trusted proxy is refused (closed)")
        func untrustedPeerRefused() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["10.0.0.0/8"]
            ) { relay in
                for header in [PROXYBytes.v1("PROXY TCP4 203.0.113.1 192.0.2.1 1 443\r\n"), PROXYBytes.v2(versionCommand: 0x20, familyTransport: 0, body: [])] {
                    let response = try await WSTestClient.sendAndAwaitClose(relay, bytes: header + Array(Self.fixedKeyRequest.utf8))
                    #expect(response == nil, "\(response.map(\.description) ?? "")")
                }
                #expect(backend.accepted == 0)
            }
        }

        @Test("a proxy-protocol listener needs trusted proxies (configuration error otherwise)")
        func proxyListenerNeedsTrustedProxies() throws {
            #expect(throws: ConfigurationError.self) {
                _ = try FerryConfiguration(listeners: Self.proxyListener, routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))])
            }
            #expect(throws: Never.self) {
                _ = try FerryConfiguration(
                    listeners: Self.proxyListener,
                    routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))],
                    trustedProxies: [AddressBlock("127.0.0.1")!]
                )
            }
            #expect(try ListenAddress.parse("127.0.0.1:6080,proxy-protocol").proxyProtocol)
            #expect(throws: ConfigurationError.self) { _ = try ListenAddress.parse("127.0.0.1:6080,proxy") }
        }

        // MARK: PROXY v2 out

        @Test("route proxy-protocol=v2: the backend's first bytes are a v2 header naming the PROXY source")
        func routeSendsV2Header() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=127.0.0.1:\(backend.port),proxy-protocol=v2")
            #expect(route.options.sendsProxyHeader)
            try await ProductionRelay.with(routes: [route], listeners: Self.proxyListener, trustedProxies: ["127.0.0.1/32"]) { relay in
                let client = try await WSTestClient.proxied(relay, prefix: PROXYBytes.v1("PROXY TCP4 203.0.113.50 192.0.2.1 41000 443\r\n"))
                defer { Task { await client.shutdown() } }
                try client.checkUpgraded()
                try await client.send(binary: Array("hello".utf8))
                let received = await backend.waitForBytes(28 + 5)
                let parsed = try #require(try ProxyHeaderParser.parse(received), "backend got \(received)")
                #expect(
                    parsed.0 == .proxied(source: try SocketAddress(ipAddress: "203.0.113.50", port: 41000), destination: relay.address),
                    "\(parsed.0)"
                )
                #expect(parsed.1 == 28)
                #expect(Array(received.dropFirst(parsed.1)) == Array("hello".utf8), "the client's data follows the header")
            }
        }

        @Test("route proxy-protocol=v2 on a plain listener: the source is the client's TCP address")
        func routeSendsV2HeaderPlainListener() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=127.0.0.1:\(backend.port),proxy-protocol=v2")
            try await ProductionRelay.with(routes: [route]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                defer { Task { await client.shutdown() } }
                try await client.send(binary: Array("x".utf8))
                let received = await backend.waitForBytes(29)
                let parsed = try #require(try ProxyHeaderParser.parse(received), "backend got \(received)")
                let clientAddress = try #require(client.channel.localAddress)
                #expect(parsed.0 == .proxied(source: clientAddress, destination: relay.address), "\(parsed.0)")
                #expect(received.last == UInt8(ascii: "x"))
            }
        }

        @Test("route proxy-protocol=v2 with X-Forwarded-For from a trusted peer: the header names the forwarded client")
        func routeSendsV2HeaderForwarded() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=127.0.0.1:\(backend.port),proxy-protocol=v2")
            try await ProductionRelay.with(routes: [route], trustedProxies: ["127.0.0.1/32"]) { relay in
                let client = try await WSTestClient.upgrade(relay, headers: [("X-Forwarded-For", "198.51.100.7")])
                defer { Task { await client.shutdown() } }
                try await client.send(binary: Array("x".utf8))
                let received = await backend.waitForBytes(29)
                let parsed = try #require(try ProxyHeaderParser.parse(received), "backend got \(received)")
                guard case .proxied(let source, _) = parsed.0 else {
                    Issue.record("not a PROXY header with addresses: \(parsed.0)")
                    return
                }
                #expect(source.ipAddress == "198.51.100.7")
            }
        }

        @Test("route proxy-protocol=v2: an IPv6 client behind an IPv4 listener keeps its address")
        func routeSendsV2HeaderMixedFamilies() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=127.0.0.1:\(backend.port),proxy-protocol=v2")
            try await ProductionRelay.with(routes: [route], listeners: Self.proxyListener, trustedProxies: ["127.0.0.1/32"]) { relay in
                let client = try await WSTestClient.proxied(relay, prefix: PROXYBytes.v1("PROXY TCP6 2001:db8::99 2001:db8::1 40999 443\r\n"))
                defer { Task { await client.shutdown() } }
                try client.checkUpgraded()
                try await client.send(binary: Array("x".utf8))
                let (received, outcome) = await backend.waitForProxyHeader()
                guard case .parsed(let header, _) = outcome else {
                    Issue.record("the backend got no PROXY header: \(outcome), \(received)")
                    return
                }
                // The header's two addresses must share a family; Ferry's listener address is IPv4, so
                // it sends UNSPEC and the backend never learns the client (it could send the listener
                // address as ::ffff:127.0.0.1 instead).
                let expected = try SocketAddress(ipAddress: "2001:db8::99", port: 40999)
                guard case .proxied(let source, _) = header else {
                    Issue.record("the backend got \(header) instead of the client's address")
                    return
                }
                #expect(source == expected)
            }
        }

        @Test("route proxy-protocol=v2 to a tls:// backend: the PROXY header comes before the TLS handshake")
        func routeSendsV2HeaderBeforeTLS() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://127.0.0.1:\(backend.port),proxy-protocol=v2,tls-verify=false")
            let limits = Relay.testLimits { $0.handshakeTimeout = .seconds(2) }
            try await ProductionRelay.with(routes: [route], limits: limits) { relay in
                // The backend does not speak TLS, so the upgrade never completes; only its first bytes matter.
                let client = try await WSTestClient.open(to: relay.address)
                defer { Task { await client.shutdown() } }
                try await client.sendHandshake(path: "/", host: relay.hostHeader)
                let received = await backend.waitForBytes(16, timeout: .seconds(3))
                #expect(received.count >= 16, "the relay sent the backend nothing")
                // A PROXY-aware TLS server (HAProxy accept-proxy, nginx proxy_protocol) reads the header
                // in the clear before the ClientHello; Ferry writes it after the TLS handshake, inside TLS.
                #expect(Array(received.prefix(12)) == PROXYBytes.v2Signature, "first bytes: \(Array(received.prefix(16)))")
                // Ends the relay's (never finishing) TLS handshake, so stopping does not wait for it.
                await backend.close()
            }
        }

        @Test("a tls:// backend that never answers the TLS handshake: the handshake deadline frees the slot and the backend connection")
        func silentTLSBackendReleased() async throws {
            let backend = try await RecordingBackend.start()
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://127.0.0.1:\(backend.port),tls-verify=false")
            let limits = Relay.testLimits {
                $0.handshakeTimeout = .milliseconds(500)
                $0.connectTimeout = .milliseconds(500)
            }
            try await ProductionRelay.with(routes: [route], limits: limits) { relay in
                let client = try await WSTestClient.open(to: relay.address)
                defer { Task { await client.shutdown() } }
                try await client.sendHandshake(path: "/", host: relay.hostHeader)
                // The relay's ClientHello reaches the backend, which never answers.
                #expect(await backend.waitForBytes(5, timeout: .seconds(3)).first == 0x16)
                // The client is let go at the handshake deadline ...
                _ = try await client.waitForDisconnect(timeout: .seconds(3))
                // ... and nothing may be left behind: no reserved session slot, no backend connection.
                let released = await Relay.eventually(timeout: .seconds(2)) {
                    relay.server.environment.registry.count == 0 && backend.closedConnections == 1
                }
                #expect(
                    released,
                    "slots reserved: \(relay.server.environment.registry.count); backend connections closed: \(backend.closedConnections)"
                )
                await backend.close()
            }
        }

        // MARK: Forwarding headers

        @Test("X-Forwarded-For / Forwarded from a trusted peer change the logged client")
        func forwardingHeadersTrusted() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                let first = try await WSTestClient.upgrade(relay, headers: [("X-Forwarded-For", "192.0.2.200, 198.51.100.7")])
                try await Self.echoAndClose(first, "xff")
                #expect(await capture.waitForSessionClients(1) == ["198.51.100.7:0"], "\(capture.text)")

                let second = try await WSTestClient.upgrade(relay, headers: [("Forwarded", #"for="[2001:db8::42]:4711";proto=https"#)])
                try await Self.echoAndClose(second, "forwarded")
                let clients = await capture.waitForSessionClients(2)
                #expect(clients.last == "[2001:db8::42]:0", "\(capture.text)")

                // A refusal is logged with the forwarded client too.
                let refused = try await WSTestClient.connect(to: relay, path: "/", headers: [("X-Forwarded-For", "203.0.113.66"), ("Origin", "https://evil.example")])
                #expect(refused.response.status == 403)
                await refused.shutdown()
                let refusedLogged = await Relay.eventually {
                    capture.text.split(separator: "\n").contains { $0.contains("handshake refused") && $0.contains("client=203.0.113.66:0") }
                }
                #expect(refusedLogged, "\(capture.text)")
            }
        }

        @Test("behind a PROXY listener, X-Forwarded-For from the (untrusted) PROXY-named client is not believed")
        func forwardingHeadersBehindProxyListener() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: Self.proxyListener,
                trustedProxies: ["127.0.0.1/32"],
                logger: capture.logger()
            ) { relay in
                // A layer-4 balancer passes the client's HTTP headers through untouched: the PROXY header
                // names the client (203.0.113.50, not a trusted proxy), whose own X-Forwarded-For is
                // whatever it likes. Only a trusted hop's forwarding headers may be believed.
                let client = try await WSTestClient.proxied(
                    relay,
                    prefix: PROXYBytes.v1("PROXY TCP4 203.0.113.50 192.0.2.1 41000 443\r\n"),
                    headers: [("X-Forwarded-For", "198.51.100.66")]
                )
                try client.checkUpgraded()
                try await Self.echoAndClose(client, "spoof behind PROXY")
                let clients = await capture.waitForSessionClients(1)
                #expect(clients == ["203.0.113.50:41000"], "\(capture.text)")
            }
        }

        @Test("X-Forwarded-For from an untrusted peer (no trusted proxies) does not change the logged client")
        func forwardingHeadersUntrusted() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(routes: [Route(path: "/", target: backend.target)], logger: capture.logger()) { relay in
                let client = try await WSTestClient.upgrade(relay, headers: [("X-Forwarded-For", "198.51.100.7"), ("Forwarded", "for=198.51.100.8")])
                let local = try #require(client.channel.localAddress)
                try await Self.echoAndClose(client, "spoof")
                let clients = await capture.waitForSessionClients(1)
                #expect(clients == ["127.0.0.1:\(local.port ?? 0)"], "\(capture.text)")
                #expect(!capture.text.contains("198.51.100.7"))
            }
        }

        @Test("X-Forwarded-For from a peer outside the trusted blocks does not change the logged client")
        func forwardingHeadersWrongBlock() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let capture = AuthLogCapture()
            try await ProductionRelay.with(
                routes: [Route(path: "/", target: backend.target)],
                trustedProxies: ["10.0.0.0/8", "::1/128"],
                logger: capture.logger()
            ) { relay in
                let client = try await WSTestClient.upgrade(relay, headers: [("X-Forwarded-For", "198.51.100.7")])
                let local = try #require(client.channel.localAddress)
                try await Self.echoAndClose(client, "spoof")
                #expect(await capture.waitForSessionClients(1) == ["127.0.0.1:\(local.port ?? 0)"], "\(capture.text)")
            }
        }
    }
}
