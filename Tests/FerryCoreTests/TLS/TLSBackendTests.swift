import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension TLSTests {
    /// `tls://` backends: verified against the system store plus --backend-ca, by host name or IP
    /// address; a failed verification is a 502 before any upgrade; `tls-verify=false` skips it.
    @Suite("Backend TLS")
    struct Backend {
        static func backendTLS(_ pki: TestPKI) -> BackendTLSOptions { BackendTLSOptions(extraCAPath: pki.caPath) }

        /// Sessions with a TLS backend linger for 5 s after they end (the known issue recorded in
        /// ``sessionReleasedPromptly()``); stopping the relay does not wait that long for them. The
        /// lingering channels close on their own.
        static let stopTimeout = TimeAmount.milliseconds(300)

        /// A plain ws:// upgrade through the relay, echoing one message.
        static func echoThrough(_ relay: RunningRelay, path: String = "/", _ text: String) async throws -> String? {
            let client = try await WSTestClient.upgrade(relay, path: path)
            let echoed = try await TLSEcho.roundTrip(client, text)
            await client.shutdown()
            return echoed
        }

        @Test("tls://localhost:PORT with --backend-ca: the echo goes through TLS")
        func verifiedByName() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TLSEchoBackend.start(pki.localhost)
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://localhost:\(backend.port)")
            try await TLSRelay.with(routes: [route], tls: nil, backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                #expect(try await Self.echoThrough(relay, "through tls to localhost") == "through tls to localhost")
                // Bytes both ways over a longer session.
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 11)
                try await client.send(binary: pattern.buffer(at: 0, count: 200_000))
                let echoed = try await client.receiveBytes(count: 200_000, timeout: .seconds(10))
                #expect(pattern.matches(echoed, at: 0))
                #expect(try await client.close(code: 1000).code == 1000)
                await client.shutdown()
            }
        }

        @Test("tls://127.0.0.1:PORT: the certificate's IP address SAN is checked")
        func verifiedByIPAddress() async throws {
            let pki = try TestPKI.shared()
            let withIP = try await TLSEchoBackend.start(pki.localhost)
            let withoutIP = try await TLSEchoBackend.start(pki.other)
            defer {
                Task {
                    await withIP.close()
                    await withoutIP.close()
                }
            }
            let routes = [
                try Route.parse("/ip=tls://127.0.0.1:\(withIP.port)"),
                try Route.parse("/no-ip=tls://127.0.0.1:\(withoutIP.port)"),
            ]
            try await TLSRelay.with(routes: routes, tls: nil, backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                #expect(try await Self.echoThrough(relay, path: "/ip", "by address") == "by address")
                let refused = try await WSTestClient.connect(to: relay, path: "/no-ip")
                #expect(refused.response.status == 502, "\(refused.response)")
                await refused.shutdown()
            }
        }

        @Test("a backend certificate for another host: 502 and no upgrade; tls-verify=false accepts it")
        func wrongHost() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TLSEchoBackend.start(pki.other)
            defer { Task { await backend.close() } }
            let routes = [
                try Route.parse("/verified=tls://localhost:\(backend.port)"),
                try Route.parse("/lab=tls://localhost:\(backend.port),tls-verify=false"),
            ]
            try await TLSRelay.with(routes: routes, tls: nil, backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                let refused = try await WSTestClient.connect(to: relay, path: "/verified")
                #expect(refused.response.status == 502, "\(refused.response)")
                #expect(refused.response.value("Upgrade") == nil)
                #expect(refused.response.value("Sec-WebSocket-Accept") == nil)
                _ = try await refused.waitForDisconnect(timeout: .seconds(5))
                #expect(relay.server.environment.registry.count == 0)

                #expect(try await Self.echoThrough(relay, path: "/lab", "unverified but encrypted") == "unverified but encrypted")
            }
        }

        @Test("without --backend-ca the test CA is not trusted: 502")
        func unknownCA() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TLSEchoBackend.start(pki.localhost)
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://localhost:\(backend.port)")
            try await TLSRelay.with(routes: [route], tls: nil) { relay in
                let refused = try await WSTestClient.connect(to: relay)
                #expect(refused.response.status == 502, "\(refused.response)")
                await refused.shutdown()
            }
        }

        @Test("a plaintext backend on a tls:// route: 502")
        func plaintextBackend() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://127.0.0.1:\(backend.address.port!)")
            try await TLSRelay.with(routes: [route], tls: nil, backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                let refused = try await WSTestClient.connect(to: relay, timeout: .seconds(8))
                #expect(refused.response.status == 502, "\(refused.response)")
                await refused.shutdown()
            }
        }

        @Test("a session with a tls:// backend is released as soon as the client closes")
        func sessionReleasedPromptly() async throws {
            let pki = try TestPKI.shared()
            let tlsBackend = try await TLSEchoBackend.start(pki.localhost)
            let plainBackend = try await TestBackend.start(.echo)
            defer {
                Task {
                    await tlsBackend.close()
                    await plainBackend.close()
                }
            }
            let routes = [try Route.parse("/tls=tls://localhost:\(tlsBackend.port)"), Route(path: "/plain", target: plainBackend.target)]
            try await TLSRelay.with(routes: routes, tls: nil, backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                let registry = relay.server.environment.registry
                // A plain backend: the session's slot is free at once.
                let plain = try await WSTestClient.upgrade(relay, path: "/plain")
                #expect(try await TLSEcho.roundTrip(plain, "plain") == "plain")
                #expect(try await plain.close(code: 1000).code == 1000)
                await plain.shutdown()
                #expect(await Relay.eventually(timeout: .seconds(1)) { registry.count == 0 })

                let secure = try await WSTestClient.upgrade(relay, path: "/tls")
                #expect(try await TLSEcho.roundTrip(secure, "tls") == "tls")
                #expect(try await secure.close(code: 1000).code == 1000)
                await secure.shutdown()
                let released = await Relay.eventually(timeout: .seconds(1)) { registry.count == 0 }
                #expect(released, "session still registered 1 s after the client closed")
            }
        }

        @Test("wss:// in front, tls:// behind")
        func tlsBothSides() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TLSEchoBackend.start(pki.localhost)
            defer { Task { await backend.close() } }
            let route = try Route.parse("/=tls://localhost:\(backend.port)")
            try await TLSRelay.with(routes: [route], tls: TLSRelay.options([pki.localhost]), backendTLS: Self.backendTLS(pki), stopTimeout: Self.stopTimeout) { relay in
                let session = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(try await TLSEcho.roundTrip(session.client, "tls on both legs") == "tls on both legs")
                await session.shutdown()
            }
        }
    }
}
