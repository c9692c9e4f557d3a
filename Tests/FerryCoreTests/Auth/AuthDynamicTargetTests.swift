import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension AuthTests {
    @Suite("Dynamic targets (real sockets)")
    struct DynamicTargetTests {
        /// A relay with `/connect=dynamic`, the given rules, a token file and an HMAC JWT key.
        private static func withDynamicRelay<T: Sendable>(
            rules: [String],
            tokens: String,
            secret: String,
            _ body: (RunningRelay) async throws -> T
        ) async throws -> T {
            try await AuthTempFolder.with { folder in
                let tokenFile = try folder.write("tokens", tokens)
                let keyFile = try folder.write("jwt-key", secret)
                let parsed = try rules.map { (text) throws(ConfigurationError) in try TargetRule.parse(text) }
                let auth = AuthRelay.options {
                    $0.tokenFilePath = tokenFile
                    $0.jwtKeyPath = keyFile
                    $0.allowedTargets = parsed
                }
                return try await AuthRelay.with(routes: [try Route.parse("/connect=dynamic")], auth: auth, body)
            }
        }

        @Test("a token naming an allowed target connects there; a port outside the rule is 403")
        func allowedAndRefused() async throws {
            try await withAuthEchoBackend { echo in
                guard case .tcp(_, let port) = echo.target else { throw AuthTestError(what: "echo target") }
                let outside = port == 65535 ? port - 1 : port + 1
                let (fileToken, fileOutside, fileFar) = (authRandomToken("file"), authRandomToken("file-outside"), authRandomToken("file-far"))
                let secret = AuthJWT.hmacSecret()
                let tokens = """
                    \(fileToken): 127.0.0.1:\(port)
                    \(fileOutside): 127.0.0.1:\(outside)
                    \(fileFar): 10.9.8.7:\(port)

                    """
                try await Self.withDynamicRelay(rules: ["127.0.0.0/8:\(port)"], tokens: tokens, secret: secret) { relay in
                    try await AuthClient.expectWorks(relay, path: "/connect", token: fileToken)
                    let jwt = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 300), host: "127.0.0.1", port: port), secret: secret)
                    try await AuthClient.expectWorks(relay, path: "/connect", token: jwt, via: .subprotocol)
                    #expect(echo.accepted == 2)

                    let jwtOutside = try await AuthJWT.hs256(AuthTestClaims(host: "127.0.0.1", port: outside), secret: secret)
                    for token in [fileOutside, jwtOutside, fileFar] {
                        let response = try await AuthClient.refusal(relay, path: "/connect", token: token)
                        #expect(response.status == 403, "\(response)")
                        #expect(response.body.contains("target not allowed"), "\(response)")
                    }
                    // A JWT must name its target on a dynamic route: a route claim is not enough.
                    let routeOnly = try await AuthJWT.hs256(AuthTestClaims(route: "/connect"), secret: secret)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: routeOnly).status == 403)
                    // A Unix socket is not covered by an address rule.
                    let socket = try await AuthJWT.hs256(AuthTestClaims(unix: "/tmp/ferry-auth-no-such.sock"), secret: secret)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: socket).status == 403)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: nil).status == 401)
                    #expect(echo.accepted == 2, "no refused token reached a backend")
                }
            }
        }

        @Test("with no --allow-target rules every dynamic target is refused")
        func noRules() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("no-rules")
                let secret = AuthJWT.hmacSecret()
                try await Self.withDynamicRelay(rules: [], tokens: "\(token): \(echo.target)\n", secret: secret) { relay in
                    let response = try await AuthClient.refusal(relay, path: "/connect", token: token)
                    #expect(response.status == 403, "\(response)")
                    #expect(response.body.contains("target not allowed"))
                    guard case .tcp(let host, let port) = echo.target else { return }
                    let jwt = try await AuthJWT.hs256(AuthTestClaims(host: host, port: port), secret: secret)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: jwt).status == 403)
                    #expect(echo.accepted == 0)
                }
            }
        }

        @Test("a name is checked by what it resolves to: localhost is refused by 10.0.0.0/8, allowed by localhost:PORT")
        func namesResolveBeforeChecking() async throws {
            try await withAuthEchoBackend { echo in
                guard case .tcp(_, let port) = echo.target else { throw AuthTestError(what: "echo target") }
                // localhost may also resolve to ::1; an echo there on the same port makes either address work.
                let v6Echo = try? await AuthExtraEchoListener.bind(host: "::1", port: port)
                defer { v6Echo?.close(promise: nil) }
                let token = authRandomToken("localhost")
                let secret = AuthJWT.hmacSecret()
                let tokens = "\(token): localhost:\(port)\n"
                try await Self.withDynamicRelay(rules: ["10.0.0.0/8:*"], tokens: tokens, secret: secret) { relay in
                    let response = try await AuthClient.refusal(relay, path: "/connect", token: token)
                    #expect(response.status == 403, "\(response)")
                    #expect(response.body.contains("target not allowed"))
                    let jwt = try await AuthJWT.hs256(AuthTestClaims(host: "localhost", port: port), secret: secret)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: jwt).status == 403)
                }
                #expect(echo.accepted == 0)
                try await Self.withDynamicRelay(rules: ["localhost:\(port)"], tokens: tokens, secret: secret) { relay in
                    try await AuthClient.expectWorks(relay, path: "/connect", token: token)
                    let jwt = try await AuthJWT.hs256(AuthTestClaims(host: "localhost", port: port), secret: secret)
                    try await AuthClient.expectWorks(relay, path: "/connect", token: jwt)
                    // The name rule covers its port only.
                    let otherPort = try await AuthJWT.hs256(AuthTestClaims(host: "localhost", port: port == 65535 ? 1 : port + 1), secret: secret)
                    #expect(try await AuthClient.refusal(relay, path: "/connect", token: otherPort).status == 403)
                }
            }
        }

        @Test("a name that does not resolve is refused")
        func unresolvable() async throws {
            let token = authRandomToken("nowhere")
            try await Self.withDynamicRelay(rules: ["127.0.0.0/8:*"], tokens: "\(token): no-such-host.invalid:5900\n", secret: AuthJWT.hmacSecret()) { relay in
                let response = try await AuthClient.refusal(relay, path: "/connect", token: token)
                #expect(response.status == 403, "\(response)")
            }
        }

        @Test("the allowlist checks addresses: unit check of TargetAllowlist on an event loop")
        func allowlistUnit() async throws {
            let loop = IntegrationLoops.group.next()
            let allowlist = TargetAllowlist(rules: [try TargetRule.parse("127.0.0.0/8:5900-5910"), try TargetRule.parse("unix:/run/vnc/")])
            #expect(try await allowlist.check(.tcp(host: "127.0.0.1", port: 5905), on: loop).get() == .tcp(host: "127.0.0.1", port: 5905))
            #expect(try await allowlist.check(.tcp(host: "127.0.0.1", port: 5911), on: loop).get() == nil)
            #expect(try await allowlist.check(.tcp(host: "::1", port: 5905), on: loop).get() == nil)
            #expect(try await allowlist.check(.unix(path: "/run/vnc/display-1.sock"), on: loop).get() == .unix(path: "/run/vnc/display-1.sock"))
            #expect(try await allowlist.check(.unix(path: "/run/vnc/../../etc/secret.sock"), on: loop).get() == nil)
            #expect(try await allowlist.check(.unix(path: "/run/other.sock"), on: loop).get() == nil)
            #expect(try await allowlist.check(.dynamic, on: loop).get() == nil)
            #expect(try await TargetAllowlist(rules: []).check(.tcp(host: "127.0.0.1", port: 5905), on: loop).get() == nil)
        }
    }
}
