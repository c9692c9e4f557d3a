import NIOCore
import NIOHTTP1
import Testing

@testable import FerryCore

extension AuthTests {
    /// The `--auth-url` parts that need no socket: the URL, the answer, the request's headers, the cache.
    @Suite("Auth URL: options, answers, cache (no sockets)")
    struct AuthCallbackUnitTests {
        // MARK: The URL

        @Test("--auth-url: http and https with a host; other schemes, no host, credentials or a token in the host are refused")
        func urlChecks() throws {
            #expect(try AuthCallbackOptions.parse("http://127.0.0.1:8080/check").url == "http://127.0.0.1:8080/check")
            #expect(try AuthCallbackOptions.parse("https://auth.internal/t/{token}").url == "https://auth.internal/t/{token}")
            #expect(try AuthCallbackOptions.parse("http://auth.internal/token?t=%s").url == "http://auth.internal/token?t=%s")
            let refused: [(String, String)] = [
                ("ftp://auth.internal/", "scheme 'ftp'"),
                ("auth.internal/check", "not a URL"),
                ("http:///check", "host is missing"),
                ("https://user:secret@auth.internal/", "credentials"),
                ("http://{token}.auth.internal/", "may not choose the host"),
            ]
            for (text, problem) in refused {
                #expect(throws: ConfigurationError.self, "\(text)") { try AuthCallbackOptions.parse(text) }
                do {
                    _ = try AuthCallbackOptions.parse(text)
                } catch {
                    #expect(error.flag == "--auth-url" && error.value == text, "\(error)")
                    #expect(error.description.contains(problem), "\(text): \(error)")
                }
            }
        }

        @Test("{token} and %s become the percent-encoded token; no token leaves them empty")
        func substitution() {
            let options = AuthCallbackOptions(url: "http://a.internal/t/{token}?again=%s")
            #expect(options.url(token: "abc-1._~") == "http://a.internal/t/abc-1._~?again=abc-1._~")
            #expect(options.url(token: "a b/c?d&e=f+g%é") == "http://a.internal/t/a%20b%2Fc%3Fd%26e%3Df%2Bg%25%C3%A9?again=a%20b%2Fc%3Fd%26e%3Df%2Bg%25%C3%A9")
            #expect(options.url(token: nil) == "http://a.internal/t/?again=")
        }

        // MARK: The answer

        private static func read(_ status: Int, _ headers: [(String, String)] = [], _ body: String = "", token: String? = nil) -> AuthCallbackAnswer {
            AuthCallbackAnswer.read(status: status, headers: HTTPHeaders(headers), body: ByteBuffer(string: body), token: token)
        }

        @Test("2xx allows; the target from X-Ferry-Target, JSON host and port, or JSON target")
        func allowed() throws {
            #expect(Self.read(200).decision == .allowed(target: nil))
            #expect(Self.read(204).decision == .allowed(target: nil))
            #expect(Self.read(200, [("X-Ferry-Target", "10.0.0.5:5901")]).decision == .allowed(target: .tcp(host: "10.0.0.5", port: 5901)))
            #expect(Self.read(200, [("X-Ferry-Target", "unix:/run/vnc.sock")]).decision == .allowed(target: .unix(path: "/run/vnc.sock")))
            #expect(Self.read(200, [("X-Ferry-Target", "tls://db.internal:5432")]).decision == .allowed(target: .tls(host: "db.internal", port: 5432)))
            #expect(Self.read(200, [], #"{"host": "10.0.0.6", "port": 5902}"#).decision == .allowed(target: .tcp(host: "10.0.0.6", port: 5902)))
            #expect(Self.read(200, [], #"{"host": "10.0.0.6", "port": "5903"}"#).decision == .allowed(target: .tcp(host: "10.0.0.6", port: 5903)))
            #expect(Self.read(200, [], #"{"target": "vnc.internal:5900"}"#).decision == .allowed(target: .tcp(host: "vnc.internal", port: 5900)))
            #expect(Self.read(200, [], "OK\n").decision == .allowed(target: nil), "a plain body names nothing")
            // The header wins over the body.
            #expect(Self.read(200, [("X-Ferry-Target", "10.0.0.5:1")], #"{"target": "10.0.0.5:2"}"#).decision == .allowed(target: .tcp(host: "10.0.0.5", port: 1)))
        }

        @Test("a target that cannot be read is unavailable (503), not an allow without a target")
        func unreadableTarget() {
            for (headers, body) in [
                ([("X-Ferry-Target", "nonsense")], ""),
                ([("X-Ferry-Target", "dynamic")], ""),
                ([], #"{"host": "10.0.0.6", "port": 0}"#),
                ([], #"{"target": 5900}"#),
                ([], #"{"host": "#),
            ] as [([(String, String)], String)] {
                guard case .unavailable = Self.read(200, headers, body).decision else {
                    Issue.record("\(headers) \(body) was not unavailable")
                    continue
                }
            }
        }

        @Test("401 and 403 carry the body's first line, printable and short, without the token")
        func refused() {
            #expect(Self.read(401, [], "log in first\nmore detail").decision == .refused(HandshakeRejection(.unauthorized, "log in first")))
            #expect(Self.read(403, [], "").decision == .refused(HandshakeRejection(.forbidden, "authorization refused")))
            #expect(Self.read(401, [], "\r\n").decision == .refused(HandshakeRejection(.unauthorized, "authorization required")))
            #expect(Self.read(403, [], "token s3cret is revoked", token: "s3cret").decision == .refused(HandshakeRejection(.forbidden, "token … is revoked")))
            #expect(Self.read(403, [], "bell\u{07}tab\there").decision == .refused(HandshakeRejection(.forbidden, "belltabhere")))
            guard case .refused(let long) = Self.read(403, [], String(repeating: "x", count: 5000)).decision else {
                Issue.record("not refused")
                return
            }
            #expect(long.message.count == AuthCallbackAnswer.maxMessageLength + 1)
        }

        @Test("redirects and every other status are unavailable, with a reason")
        func otherStatuses() {
            for status in [301, 302, 307, 400, 404, 429, 500, 502, 503] {
                guard case .unavailable(let reason) = Self.read(status, [("Location", "http://elsewhere.example/")]).decision else {
                    Issue.record("\(status) was a decision")
                    continue
                }
                #expect(reason.contains("\(status)"))
                if (300..<400).contains(status) { #expect(reason.contains("redirect")) }
            }
        }

        @Test("Cache-Control: max-age is read; no-store, no-cache, 0 or none mean no caching")
        func maxAge() {
            #expect(Self.read(200, [("Cache-Control", "max-age=30")]).maxAge == .seconds(30))
            #expect(Self.read(200, [("Cache-Control", "private, Max-Age=\"12\"")]).maxAge == .seconds(12))
            #expect(Self.read(403, [("Cache-Control", "max-age=5")]).maxAge == .seconds(5))
            #expect(Self.read(200, [("Cache-Control", "max-age=30, no-store")]).maxAge == nil)
            #expect(Self.read(200, [("Cache-Control", "no-cache")]).maxAge == nil)
            #expect(Self.read(200, [("Cache-Control", "max-age=0")]).maxAge == nil)
            #expect(Self.read(200, [("Cache-Control", "max-age=x")]).maxAge == nil)
            #expect(Self.read(200).maxAge == nil)
        }

        // MARK: The request

        private static func head(_ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
            HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
        }

        @Test("the headers sent: original URI and method, client, host, proto, Origin, Cookie, Authorization, route, token, CN")
        func headers() {
            let head = Self.head("/vnc/a?x=1", [("Host", "relay.example:6080"), ("Origin", "https://app.example"), ("Cookie", "a=1"), ("Cookie", "b=2"), ("Authorization", "Bearer t0k")])
            let request = AuthCallbackRequest(head: head, route: "/vnc", token: "t0k", clientAddress: "203.0.113.9", clientCertificateCN: "alice", secure: true)
            let sent = Dictionary(request.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
            #expect(sent == [
                "X-Original-URI": "/vnc/a?x=1",
                "X-Original-Method": "GET",
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Host": "relay.example:6080",
                "X-Forwarded-Proto": "wss",
                "Origin": "https://app.example",
                "Cookie": "a=1; b=2",
                "Authorization": "Bearer t0k",
                "X-Ferry-Route": "/vnc",
                "X-Ferry-Token": "t0k",
                "X-Ferry-Client-Cert-CN": "alice",
            ])
            let bare = AuthCallbackRequest(head: Self.head("/", []), route: "/", token: nil, clientAddress: "unix", clientCertificateCN: nil, secure: false)
            #expect(bare.headers.map(\.name) == ["X-Original-URI", "X-Original-Method", "X-Forwarded-For", "X-Forwarded-Proto", "X-Ferry-Route"])
            #expect(bare.headers.first { $0.name == "X-Forwarded-Proto" }?.value == "ws")
        }

        @Test("the cache key changes with the token, the cookie, the route and the client address, and holds none of them")
        func cacheKey() {
            func key(_ token: String?, cookie: String? = nil, route: String = "/vnc", client: String = "10.0.0.1") -> AuthDecisionCache.Key {
                let headers = cookie.map { [("Cookie", $0)] } ?? []
                return AuthCallbackRequest(head: Self.head("/vnc", headers), route: route, token: token, clientAddress: client, clientCertificateCN: nil, secure: false).cacheKey
            }
            let base = key("t1")
            #expect(key("t1") == base)
            #expect(key("t2") != base)
            #expect(key("t1", cookie: "s=1") != base)
            #expect(key("t1", route: "/other") != base)
            #expect(key("t1", client: "10.0.0.2") != base)
            #expect(key(nil, cookie: "s=1") != key(nil, cookie: "s=2"))
            #expect(key("") != key(nil), "an empty token is not no token")
            #expect(!String(describing: base).contains("t1"))
        }

        // MARK: The cache

        private static let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        private static func key(_ n: Int) -> AuthDecisionCache.Key { AuthDecisionCache.Key(digest: [UInt8(n & 0xFF), UInt8(n >> 8)]) }

        @Test("kept for max-age, capped by the cache's maximum; nothing without max-age; unavailable never")
        func cacheAges() {
            var cache = AuthDecisionCache(maxEntries: 100, maxAge: .seconds(60), refusalMaxAge: .seconds(5))
            let allowed = AuthCallbackDecision.allowed(target: nil)
            cache.store(allowed, maxAge: .seconds(10), for: Self.key(1), now: Self.now)
            #expect(cache.decision(for: Self.key(1), now: Self.now + .seconds(9)) == allowed)
            #expect(cache.decision(for: Self.key(1), now: Self.now + .seconds(10)) == nil)
            #expect(cache.count == 0, "an expired entry is dropped when met")

            cache.store(allowed, maxAge: .seconds(600), for: Self.key(2), now: Self.now)
            #expect(cache.decision(for: Self.key(2), now: Self.now + .seconds(59)) == allowed)
            #expect(cache.decision(for: Self.key(2), now: Self.now + .seconds(61)) == nil, "capped at the cache's 60 s")

            cache.store(allowed, maxAge: nil, for: Self.key(3), now: Self.now)
            cache.store(.unavailable(reason: "down"), maxAge: .seconds(30), for: Self.key(4), now: Self.now)
            #expect(cache.decision(for: Self.key(3), now: Self.now) == nil)
            #expect(cache.decision(for: Self.key(4), now: Self.now) == nil)
        }

        @Test("a refusal is kept only briefly, whatever its max-age; a cache maximum of 0 keeps nothing")
        func cacheRefusalsAndOff() {
            var cache = AuthDecisionCache(maxEntries: 100, maxAge: .seconds(60), refusalMaxAge: .seconds(5))
            let refused = AuthCallbackDecision.refused(HandshakeRejection(.forbidden, "no"))
            cache.store(refused, maxAge: .seconds(60), for: Self.key(1), now: Self.now)
            #expect(cache.decision(for: Self.key(1), now: Self.now + .seconds(4)) == refused)
            #expect(cache.decision(for: Self.key(1), now: Self.now + .seconds(5)) == nil)

            var off = AuthDecisionCache(maxEntries: 100, maxAge: .zero, refusalMaxAge: .seconds(5))
            off.store(.allowed(target: nil), maxAge: .seconds(60), for: Self.key(1), now: Self.now)
            off.store(refused, maxAge: .seconds(60), for: Self.key(2), now: Self.now)
            #expect(off.count == 0)
        }

        @Test("bounded: a full cache drops the expired, then those expiring soonest")
        func cacheBounded() {
            var cache = AuthDecisionCache(maxEntries: 100, maxAge: .seconds(600), refusalMaxAge: .seconds(5))
            for n in 0..<100 {
                cache.store(.allowed(target: nil), maxAge: .seconds(Int64(100 + n)), for: Self.key(n), now: Self.now)
            }
            #expect(cache.count == 100)
            cache.store(.allowed(target: nil), maxAge: .seconds(500), for: Self.key(1000), now: Self.now)
            #expect(cache.count <= 100)
            #expect(cache.decision(for: Self.key(1000), now: Self.now) != nil)
            #expect(cache.decision(for: Self.key(0), now: Self.now) == nil, "the soonest to expire went first")
            #expect(cache.decision(for: Self.key(99), now: Self.now) != nil)
            // Past every entry's age, a store clears them all out rather than evicting live ones.
            for n in 2000..<2200 {
                cache.store(.allowed(target: nil), maxAge: .seconds(1), for: Self.key(n), now: Self.now + .seconds(300 + Int64(n)))
            }
            #expect(cache.count <= 100)
        }

        // MARK: Routes and flags

        @Test("route option auth=url; the last auth= wins")
        func routeOption() throws {
            let route = try Route.parse("/vnc=127.0.0.1:5900,auth=url")
            #expect(route.options.asksAuthService && !route.options.requiresToken)
            #expect(route.needsAuthorization && !route.needsToken)
            let back = try Route.parse("/vnc=127.0.0.1:5900,auth=url,auth=token")
            #expect(!back.options.asksAuthService && back.options.requiresToken)
            let dynamic = try Route.parse("/c=dynamic,auth=url")
            #expect(dynamic.needsAuthorization && !dynamic.needsToken)
        }

        @Test("the flags: defaults, durations, and the errors that name the flag and the fix")
        func flags() throws {
            let listen = ["--listen", "127.0.0.1:6080"]
            let (configuration, _) = try FerryFlags.configuration(listen + [
                "--route", "/vnc=127.0.0.1:5900,auth=url", "--auth-url", "http://127.0.0.1:9/check?t={token}",
            ])
            let callback = try #require(configuration.auth.callback)
            #expect(callback.timeout == .seconds(2) && callback.cacheMax == .seconds(60) && callback.revalidate == nil && callback.caPath == nil)
            let (tuned, _) = try FerryFlags.configuration(listen + [
                "--route", "/c=dynamic", "--auth-url", "http://127.0.0.1:9/check", "--auth-timeout", "500ms", "--auth-cache-max", "0",
                "--auth-revalidate", "30s", "--allow-target", "10.0.0.0/8:*",
            ])
            #expect(tuned.auth.callback?.timeout == .milliseconds(500))
            #expect(tuned.auth.callback?.cacheMax == .zero)
            #expect(tuned.auth.callback?.revalidate == .seconds(30))

            let cases: [([String], String, String)] = [
                (["--route", "/vnc=127.0.0.1:5900,auth=url"], "--route", "--auth-url URL"),
                (["--route", "/vnc=127.0.0.1:5900", "--auth-url", "http://127.0.0.1:9/"], "--auth-url", "auth=url"),
                (["--route", "/vnc=127.0.0.1:5900,auth=url", "--auth-url", "http://127.0.0.1:9/", "--auth-timeout", "0"], "--auth-timeout", "500ms"),
                (["--route", "/vnc=127.0.0.1:5900", "--auth-revalidate", "10s"], "--auth-revalidate", "--auth-url URL"),
                (["--route", "/vnc=127.0.0.1:5900,auth=url", "--auth-url", "http://127.0.0.1:9/", "--auth-ca", "/etc/hosts"], "--auth-ca", "https://"),
            ]
            for (arguments, flag, fix) in cases {
                let problem = try #require(FerryFlags.problem(listen + arguments), "\(arguments)")
                #expect(problem.flag == flag, "\(arguments): \(problem)")
                #expect(problem.description.contains(fix), "\(arguments): \(problem)")
            }
        }
    }
}
