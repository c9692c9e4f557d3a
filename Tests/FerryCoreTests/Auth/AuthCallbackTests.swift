import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

extension AuthTests {
    /// `--auth-url` end to end: a relay, an HTTP service written here (``TestAuthService``), an echo backend.
    @Suite("Auth URL (real sockets)")
    struct AuthCallbackTests {
        /// Starts a service answering as `reply` (over HTTPS with `tls`), runs `body`, and always closes it.
        static func withService<T: Sendable>(
            tls: TestCertificatePair? = nil,
            _ reply: @escaping @Sendable (TestAuthService.Asked) -> TestAuthService.Reply,
            _ body: (TestAuthService) async throws -> T
        ) async throws -> T {
            let service = try await TestAuthService.start(tls: tls, reply)
            do {
                let result = try await body(service)
                await service.close()
                return result
            } catch {
                await service.close()
                throw error
            }
        }

        /// A relay whose `--auth-url` is `url`, with `adjust` applied to its options (and listener TLS
        /// with `tls`).
        static func withRelay<T: Sendable>(
            routes: [String],
            url: String,
            allowTargets: [String] = [],
            logger: Logger = Relay.logger,
            tls: ListenerTLSOptions? = nil,
            adjust: (inout AuthCallbackOptions) -> Void = { _ in },
            _ body: (RunningRelay) async throws -> T
        ) async throws -> T {
            var callback = AuthCallbackOptions(url: url)
            adjust(&callback)
            let rules = try allowTargets.map { (text) throws(ConfigurationError) in try TargetRule.parse(text) }
            let auth = AuthRelay.options {
                $0.callback = callback
                $0.allowedTargets = rules
            }
            let parsed = try routes.map { (text) throws(ConfigurationError) in try Route.parse(text) }
            return try await AuthRelay.with(routes: parsed, auth: auth, logger: logger, tls: tls, body)
        }

        static func token(_ asked: TestAuthService.Asked) -> String? { asked.headers.first(name: "X-Ferry-Token") }

        @Test("2xx lets the session in; 401 and 403 reach the client with the first line of the service's body")
        func allowAndDeny() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ asked in
                    switch Self.token(asked) {
                    case "good": return .allow()
                    case "who": return .deny(401, "please log in\nat https://app.example/login")
                    default: return .deny(403, "you shall not pass")
                    }
                }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check") { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "good")
                        let unauthorized = try await AuthClient.refusal(relay, path: "/vnc", token: "who")
                        #expect(unauthorized.status == 401 && unauthorized.body == "please log in\n", "\(unauthorized)")
                        let forbidden = try await AuthClient.refusal(relay, path: "/vnc", token: "bad")
                        #expect(forbidden.status == 403 && forbidden.body == "you shall not pass\n", "\(forbidden)")
                        // No token at all: the service decides that too (a cookie session may be enough).
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: nil).status == 403)
                        #expect(echo.accepted == 1, "no refused handshake reached the backend")
                        #expect(service.count == 4)
                    }
                }
            }
        }

        @Test("what the service receives: each header, the real client, and no client-certificate CN without a verified certificate")
        func headersReceived() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ _ in .allow() }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check") { relay in
                        let client = try await WSTestClient.connect(
                            to: relay,
                            path: "/vnc/desk?y=2",
                            headers: [("Authorization", "Bearer tok-1"), ("Cookie", "session=s3ss; theme=dark")]
                        )
                        try client.checkUpgraded()
                        await client.shutdown()
                        let asked = try #require(service.requests.first)
                        #expect(asked.method == .GET)
                        #expect(asked.uri == "/check")
                        let expected: [String: String] = [
                            "X-Original-URI": "/vnc/desk?y=2",
                            "X-Original-Method": "GET",
                            "X-Forwarded-For": "127.0.0.1",
                            "X-Forwarded-Host": relay.hostHeader,
                            "X-Forwarded-Proto": "ws",
                            "Cookie": "session=s3ss; theme=dark",
                            "Authorization": "Bearer tok-1",
                            "X-Ferry-Route": "/vnc",
                            "X-Ferry-Token": "tok-1",
                        ]
                        for (name, value) in expected {
                            #expect(asked.headers[name] == [value], "\(name): \(asked.headers[name])")
                        }
                        #expect(asked.headers["X-Ferry-Client-Cert-CN"].isEmpty)
                        #expect(asked.headers["Origin"].isEmpty, "the client sent no Origin")
                    }
                }
            }
        }

        @Test("a dynamic route's target: X-Ferry-Target, JSON host and port, JSON target; still checked by --allow-target")
        func dynamicTargets() async throws {
            try await withAuthEchoBackend { echo in
                guard case .tcp(_, let port) = echo.target else { throw AuthTestError(what: "echo target") }
                try await Self.withService({ asked in
                    switch Self.token(asked) {
                    case "header": return .allow(target: "127.0.0.1:\(port)")
                    case "json": return TestAuthService.Reply(body: #"{"host": "127.0.0.1", "port": \#(port)}"#)
                    case "target": return TestAuthService.Reply(body: #"{"target": "127.0.0.1:\#(port)"}"#)
                    case "far": return .allow(target: "10.9.8.7:\(port)")
                    default: return .allow()
                    }
                }) { service in
                    try await Self.withRelay(routes: ["/connect=dynamic"], url: service.base + "/check", allowTargets: ["127.0.0.0/8:\(port)"]) { relay in
                        for token in ["header", "json", "target"] {
                            try await AuthClient.expectWorks(relay, path: "/connect", token: token)
                        }
                        #expect(echo.accepted == 3)
                        let far = try await AuthClient.refusal(relay, path: "/connect", token: "far")
                        #expect(far.status == 403 && far.body.contains("target not allowed"), "\(far)")
                        let none = try await AuthClient.refusal(relay, path: "/connect", token: "none")
                        #expect(none.status == 503, "\(none)")
                        #expect(echo.accepted == 3)
                    }
                }
            }
        }

        @Test("a slow service (past --auth-timeout) and a service that is down: 503, logged with the reason")
        func slowAndDown() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ _ in TestAuthService.Reply(delay: .seconds(3)) }) { service in
                    let log = AuthLogCapture()
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", logger: log.logger(), adjust: { $0.timeout = .milliseconds(300) }) { relay in
                        let started = ContinuousClock.now
                        let response = try await AuthClient.refusal(relay, path: "/vnc", token: "slow-token")
                        #expect(response.status == 503 && response.body.contains("authorization service unavailable"), "\(response)")
                        #expect(ContinuousClock.now - started < .milliseconds(1500), "answered within the timeout, not the service's delay")
                    }
                    #expect(log.text.contains("authorization service unavailable"), "\(log.text)")
                    #expect(!log.text.contains("slow-token"), "the token is never logged")
                }
                // Port 1: nothing listens there. A port that was free a moment ago can meanwhile go to a
                // server of a test running alongside, which then takes the request and never answers.
                let log = AuthLogCapture()
                try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: "http://127.0.0.1:1/check", logger: log.logger()) { relay in
                    let response = try await AuthClient.refusal(relay, path: "/vnc", token: "down-token")
                    #expect(response.status == 503, "\(response)")
                }
                #expect(log.text.contains("the request failed"), "\(log.text)")
                #expect(echo.accepted == 0)
            }
        }

        @Test("caching: max-age is honoured; none or 0 asks every time; --auth-cache-max caps it; a refusal is kept briefly")
        func caching() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ asked in
                    switch Self.token(asked) {
                    case "cached-1", "cached-2": return .allow(maxAge: 60)
                    case "refused": return .deny(403, "no", maxAge: 60)
                    default: return .allow()
                    }
                }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", adjust: { $0.refusalCacheMax = .seconds(2) }) { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        #expect(service.count == 1, "the second handshake used the cached decision")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-2")
                        #expect(service.count == 2, "another token is another decision")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "uncached")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "uncached")
                        #expect(service.count == 4, "no max-age: asked every time")

                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: "refused").status == 403)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: "refused").status == 403)
                        #expect(service.count == 5, "a refusal is cached for a moment")
                        // Ages of seconds, not fractions: two handshakes on a loaded machine can be
                        // half a second apart.
                        try await Task.sleep(for: .milliseconds(2300))
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: "refused").status == 403)
                        #expect(service.count == 6, "and only for a moment, despite max-age=60")
                    }
                    let before = service.count
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", adjust: { $0.cacheMax = .seconds(2) }) { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        #expect(service.count == before + 1)
                        try await Task.sleep(for: .milliseconds(2300))
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        #expect(service.count == before + 2, "--auth-cache-max capped max-age=60")
                    }
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", adjust: { $0.cacheMax = .zero }) { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "cached-1")
                        #expect(service.count == before + 4, "--auth-cache-max 0: asked every time")
                    }
                }
            }
        }

        @Test("{token} and %s in the URL become the percent-encoded token")
        func tokenInURL() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ _ in .allow() }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/t/{token}?again=%s") { relay in
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: "a b/c+é?&", via: .query)
                        let encoded = "a%20b%2Fc%2B%C3%A9%3F%26"
                        #expect(service.requests.first?.uri == "/t/\(encoded)?again=\(encoded)", "\(service.requests.map(\.uri))")
                    }
                }
            }
        }

        @Test("a redirect is not followed: 503, and the other URL never sees the token")
        func noRedirects() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ asked in
                    asked.uri.hasPrefix("/check") ? TestAuthService.Reply(status: 302, headers: [("Location", "/elsewhere")]) : .allow()
                }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check") { relay in
                        let response = try await AuthClient.refusal(relay, path: "/vnc", token: "redirected")
                        #expect(response.status == 503, "\(response)")
                        #expect(service.requests.map(\.uri) == ["/check"])
                        #expect(echo.accepted == 0)
                    }
                }
            }
        }

        @Test("--auth-revalidate: a live session is closed with 1008 once the service answers 403")
        func revalidation() async throws {
            try await withAuthEchoBackend { echo in
                try await Self.withService({ _ in .allow(maxAge: 60) }) { service in
                    try await Self.withRelay(routes: ["/vnc=\(echo.target),auth=url"], url: service.base + "/check", adjust: { $0.revalidate = .milliseconds(300) }) { relay in
                        let kept = try await AuthClient.session(relay, path: "/vnc", token: "kept")
                        let revoked = try await AuthClient.session(relay, path: "/vnc", token: "revoked")
                        try await AuthClient.expectEcho(revoked, "before")
                        // Asked again past the cache: max-age=60 does not keep a revoked session alive.
                        let asked = await Relay.eventually(timeout: .seconds(3)) { service.count >= 4 }
                        #expect(asked, "revalidated within 3 s (\(service.count) requests)")
                        service.answer { Self.token($0) == "revoked" ? .deny(403, "revoked") : .allow() }
                        let close = try await revoked.waitForClose(timeout: .seconds(3))
                        #expect(close == WSCloseInfo(code: 1008, reason: "authorization revoked"))
                        try await AuthClient.expectEcho(kept, "still here")
                        _ = try? await kept.close(timeout: .seconds(3))
                        await kept.shutdown()
                        await revoked.shutdown()
                    }
                }
            }
        }
    }
}
