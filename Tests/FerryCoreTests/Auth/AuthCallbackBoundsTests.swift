import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import FerryCore

extension AuthTests {
    /// `--auth-url`'s edges with real sockets: an `https://` service trusted through `--auth-ca` (and
    /// refused without it), the 16 KiB bound on an answer's body, the bound on requests in flight, the
    /// client-certificate CN from a real mutual-TLS handshake, and revalidation while the service is
    /// failing or gone.
    @Suite("Auth URL bounds and TLS (real sockets)")
    struct AuthCallbackBoundsTests {
        typealias Callback = AuthCallbackTests

        @Test("https: the service's certificate is verified against --auth-ca; without it the handshake fails closed (503)")
        func httpsWithAuthCA() async throws {
            let pki = try TestPKI.shared()
            try await withAuthEchoBackend { echo in
                try await Callback.withService(tls: pki.localhost, { _ in .allow() }) { service in
                    #expect(service.base.hasPrefix("https://"))
                    try await Callback.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", adjust: { $0.caPath = pki.caPath }) { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "over-tls")
                        #expect(service.count == 1)
                    }
                    let logs = AuthLogCapture()
                    try await Callback.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", logger: logs.logger()) { relay in
                        let refused = try await AuthClient.refusal(relay, path: "/vnc", token: "untrusted")
                        #expect(refused.status == 503, "\(refused)")
                    }
                    #expect(service.count == 1, "the token never reached a service the relay does not trust")
                    #expect(logs.text.contains("authorization service unavailable"), "\(logs.text)")
                    #expect(!logs.text.contains("untrusted"), "the log holds the token")
                    #expect(echo.accepted == 1)
                }
            }
        }

        @Test("an answer's body is read up to 16 KiB: exactly that is fine, one byte more fails closed (503)")
        func bodyBound() async throws {
            try await withAuthEchoBackend { echo in
                let limit = AuthCallback.maxBody
                #expect(limit == 16 * 1024)
                try await Callback.withService({ asked in
                    let size = Callback.token(asked) == "big" ? limit + 1 : limit
                    return TestAuthService.Reply(body: String(repeating: " ", count: size))
                }) { service in
                    let logs = AuthLogCapture()
                    try await Callback.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", logger: logs.logger()) { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "fits")
                        let refused = try await AuthClient.refusal(relay, path: "/vnc", token: "big")
                        #expect(refused.status == 503, "\(refused)")
                    }
                    #expect(logs.text.contains("over 16 KiB"), "\(logs.text)")
                    #expect(echo.accepted == 1)
                }
            }
        }

        @Test("requests in flight are bounded (256 by default): past the bound a handshake gets 503 at once, without asking")
        func inFlightBound() async throws {
            #expect(AuthCallbackOptions(url: "http://127.0.0.1:1/").maxConcurrentRequests == 256)
            try await withAuthEchoBackend { echo in
                try await Callback.withService({ _ in TestAuthService.Reply(delay: .milliseconds(1500)) }) { service in
                    let logs = AuthLogCapture()
                    try await Callback.withRelay(
                        routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", logger: logs.logger(),
                        adjust: { $0.maxConcurrentRequests = 2 }
                    ) { relay in
                        let slow = (0..<2).map { index in
                            Task { try await AuthClient.handshake(relay, path: "/vnc", token: "slow-\(index)") }
                        }
                        #expect(await Relay.eventually(timeout: .seconds(3)) { service.count == 2 }, "both slow requests reached the service")
                        let clock = ContinuousClock()
                        let began = clock.now
                        let third = try await AuthClient.refusal(relay, path: "/vnc", token: "third")
                        #expect(third.status == 503, "\(third)")
                        #expect(clock.now - began < .milliseconds(800), "refused at once, not after the slow answers")
                        #expect(service.count == 2, "the third handshake did not ask")
                        for task in slow {
                            let client = try await task.value
                            #expect(client.response.status == 101, "\(client.response)")
                            await client.shutdown()
                        }
                        // The bound counts requests in flight, not requests made: room again.
                        service.answer { _ in .allow() }
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "later")
                    }
                    #expect(logs.text.contains("2 requests already in flight"), "\(logs.text)")
                }
            }
        }

        @Test("X-Ferry-Client-Cert-CN: the CN of a verified client certificate; a client's own header of that name is not passed on")
        func clientCertificateName() async throws {
            let pki = try TestPKI.shared()
            let tls = TLSRelay.options([pki.localhost]) {
                $0.clientCAPath = pki.caPath
                $0.clientAuthentication = .optional
            }
            try await withAuthEchoBackend { echo in
                try await Callback.withService({ _ in .allow() }) { service in
                    try await Callback.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", tls: tls) { relay in
                        let forged = [("X-Ferry-Client-Cert-CN", "mallory-says-alice"), ("Authorization", "Bearer t")]
                        let alice = try await TLSClient.upgrade(
                            relay, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice), path: "/vnc", headers: forged
                        )
                        #expect(try await TLSEcho.roundTrip(alice.client, "alice") == "alice")
                        await alice.shutdown()
                        let anonymous = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath), path: "/vnc", headers: forged)
                        await anonymous.shutdown()

                        let asked = service.requests
                        try #require(asked.count == 2)
                        #expect(asked[0].headers["X-Ferry-Client-Cert-CN"] == ["alice"], "\(asked[0].headers)")
                        #expect(asked[0].headers["X-Forwarded-Proto"] == ["wss"])
                        #expect(asked[1].headers["X-Ferry-Client-Cert-CN"].isEmpty, "no certificate, no CN: \(asked[1].headers)")
                    }
                }
            }
        }

        @Test("--auth-revalidate while the service fails or is gone: live sessions go on, and the outage is logged")
        func revalidationDuringOutage() async throws {
            try await withAuthEchoBackend { echo in
                let logs = AuthLogCapture()
                try await Callback.withService({ _ in .allow() }) { service in
                    try await Callback.withRelay(
                        routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", logger: logs.logger(),
                        adjust: { $0.revalidate = .milliseconds(200) }
                    ) { relay in
                        let session = try await AuthClient.session(relay, path: "/vnc", token: "steady")
                        try await AuthClient.expectEcho(session, "before")
                        // The service answers 500: not a refusal.
                        service.answer { _ in TestAuthService.Reply(status: 500, body: "database down") }
                        let failing = service.count
                        #expect(await Relay.eventually(timeout: .seconds(3)) { service.count >= failing + 2 }, "revalidated while failing")
                        try await AuthClient.expectEcho(session, "during 500s")
                        // The service is gone (connection refused).
                        await service.close()
                        try await Task.sleep(for: .milliseconds(800))
                        try await AuthClient.expectEcho(session, "service gone")
                        // New handshakes, by contrast, fail closed.
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: "newcomer").status == 503)
                        _ = try? await session.close(timeout: .seconds(3))
                        await session.shutdown()
                    }
                }
                #expect(logs.text.contains("authorization service unavailable"), "\(logs.text)")
                #expect(!logs.text.contains("authorization revoked by the service"), "nothing was revoked")
            }
        }
    }
}
