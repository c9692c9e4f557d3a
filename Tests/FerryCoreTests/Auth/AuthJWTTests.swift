import Foundation
import JWTKit
import NIOCore
import Testing

@testable import FerryCore

extension AuthTests {
    @Suite("JWT (real sockets)")
    struct JWTTests {
        /// A relay with one `auth=token` route `/vnc` to an echo backend, verifying JWTs with `key`
        /// (written to a file).
        private static func withJWTRelay<T: Sendable>(
            key: String,
            adjust: (inout AuthOptions) -> Void = { _ in },
            _ body: (RunningRelay, TestBackend) async throws -> T
        ) async throws -> T {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let keyFile = try folder.write("jwt-key", key)
                    let auth = AuthRelay.options {
                        $0.jwtKeyPath = keyFile
                        adjust(&$0)
                    }
                    return try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth) { relay in
                        try await body(relay, echo)
                    }
                }
            }
        }

        @Test("HS256: a token for the route, or for its target, works; one for another route or target is 403")
        func hs256() async throws {
            let secret = AuthJWT.hmacSecret()
            try await Self.withJWTRelay(key: secret + "\n") { relay, echo in
                guard case .tcp(let host, let port) = echo.target else { throw AuthTestError(what: "echo target") }
                let forRoute = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 300), route: "/vnc"), secret: secret)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: forRoute, via: .subprotocol)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: forRoute, via: .query)

                let forTarget = try await AuthJWT.hs256(AuthTestClaims(host: host, port: port), secret: secret)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: forTarget, via: .header)

                let otherRoute = try await AuthJWT.hs256(AuthTestClaims(route: "/admin"), secret: secret)
                let response = try await AuthClient.refusal(relay, path: "/vnc", token: otherRoute)
                #expect(response.status == 403, "\(response)")
                #expect(response.body.contains("not valid for this route"))

                let otherTarget = try await AuthJWT.hs256(AuthTestClaims(host: host, port: port == 65535 ? 1 : port + 1), secret: secret)
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: otherTarget).status == 403)

                let nothingNamed = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 300)), secret: secret)
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: nothingNamed).status == 403)
            }
        }

        @Test("HS256: expired, not yet valid, another key, alg none and tampered tokens are 403")
        func hs256Refusals() async throws {
            let secret = AuthJWT.hmacSecret()
            try await Self.withJWTRelay(key: secret + "\n") { relay, _ in
                // Within the 30 s leeway is still fine.
                let barelyExpired = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: -5), route: "/vnc"), secret: secret)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: barelyExpired)

                let expired = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: -120), route: "/vnc"), secret: secret)
                let expiredResponse = try await AuthClient.refusal(relay, path: "/vnc", token: expired)
                #expect(expiredResponse.status == 403, "\(expiredResponse)")
                #expect(expiredResponse.body.contains("expired"))

                let early = try await AuthJWT.hs256(AuthTestClaims(nbf: Date(timeIntervalSinceNow: 600), route: "/vnc"), secret: secret)
                let earlyResponse = try await AuthClient.refusal(relay, path: "/vnc", token: early)
                #expect(earlyResponse.status == 403, "\(earlyResponse)")
                #expect(earlyResponse.body.contains("not yet valid"))

                let otherKey = try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: AuthJWT.hmacSecret())
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: otherKey).status == 403)

                // alg none, with an empty signature and with some bytes where the signature goes.
                let payload = #"{"route":"/vnc","exp":\#(Int(Date().timeIntervalSince1970) + 300)}"#
                for unsigned in [AuthJWT.unsigned(payloadJSON: payload), AuthJWT.unsigned(payloadJSON: payload, signature: "c2lnbmF0dXJl")] {
                    let response = try await AuthClient.refusal(relay, path: "/vnc", token: unsigned)
                    #expect(response.status == 403, "alg none accepted? \(response)")
                }

                // A valid token whose payload is swapped for another claim set.
                let valid = try await AuthJWT.hs256(AuthTestClaims(route: "/elsewhere"), secret: secret)
                let parts = valid.split(separator: ".").map(String.init)
                let tampered = parts[0] + "." + AuthJWT.base64URL(Array(#"{"route":"/vnc"}"#.utf8)) + "." + parts[2]
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: tampered).status == 403)

                let garbage = try await AuthClient.refusal(relay, path: "/vnc", token: "not.a.jwt")
                #expect(garbage.status == 403)
            }
        }

        @Test("HS384 and HS512 work with a secret long enough for them, and not with a 32-byte one")
        func longerHashes() async throws {
            let payload = #"{"route":"/vnc"}"#
            let long = AuthJWT.hmacSecret()  // 64 bytes of text
            try await Self.withJWTRelay(key: long) { relay, _ in
                for bits in [256, 384, 512] {
                    try await AuthClient.expectWorks(relay, path: "/vnc", token: AuthJWT.hmac(payloadJSON: payload, secret: long, bits: bits))
                }
                // The hand-built HS256 agrees with jwt-kit's.
                #expect(try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: long).split(separator: ".").count == 3)
            }
            let short = String(AuthJWT.hmacSecret().prefix(32))
            try await Self.withJWTRelay(key: short) { relay, _ in
                try await AuthClient.expectWorks(relay, path: "/vnc", token: AuthJWT.hmac(payloadJSON: payload, secret: short, bits: 256))
                for bits in [384, 512] {
                    let response = try await AuthClient.refusal(relay, path: "/vnc", token: AuthJWT.hmac(payloadJSON: payload, secret: short, bits: bits))
                    #expect(response.status == 403, "HS\(bits) with a 32-byte secret: \(response)")
                }
            }
        }

        @Test("an HMAC secret file with a CRLF line end is read like one with LF")
        func crlfSecretFile() async throws {
            let secret = AuthJWT.hmacSecret()
            try await Self.withJWTRelay(key: secret + "\r\n") { relay, _ in
                let token = try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: secret)
                // JWTVerifier.swift strips a final "\n" with `text.hasSuffix("\n")`, which is false for a
                // String ending in the single Character "\r\n": the secret keeps its CRLF.
                try await AuthClient.expectWorks(relay, path: "/vnc", token: token)
            }
        }

        @Test("issuer and audience are checked when configured")
        func issuerAndAudience() async throws {
            let secret = AuthJWT.hmacSecret()
            let adjust: (inout AuthOptions) -> Void = {
                $0.jwtIssuer = "https://login.example"
                $0.jwtAudience = "ferry-relay"
            }
            try await Self.withJWTRelay(key: secret, adjust: adjust) { relay, _ in
                let good = try await AuthJWT.hs256(AuthTestClaims(iss: "https://login.example", aud: ["ferry-relay"], route: "/vnc"), secret: secret)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: good)
                let oneOfSeveral = try await AuthJWT.hs256(AuthTestClaims(iss: "https://login.example", aud: ["other", "ferry-relay"], route: "/vnc"), secret: secret)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: oneOfSeveral)

                let refusals: [(String, AuthTestClaims)] = [
                    ("wrong issuer", AuthTestClaims(iss: "https://evil.example", aud: ["ferry-relay"], route: "/vnc")),
                    ("no issuer", AuthTestClaims(aud: ["ferry-relay"], route: "/vnc")),
                    ("wrong audience", AuthTestClaims(iss: "https://login.example", aud: ["another-relay"], route: "/vnc")),
                    ("no audience", AuthTestClaims(iss: "https://login.example", route: "/vnc")),
                ]
                for (what, claims) in refusals {
                    let token = try await AuthJWT.hs256(claims, secret: secret)
                    let response = try await AuthClient.refusal(relay, path: "/vnc", token: token)
                    #expect(response.status == 403, "\(what): \(response)")
                    #expect(response.body.contains("not valid for this relay"), "\(what): \(response)")
                }
            }
        }

        @Test("ES256 with a PEM public key; another key and an HS256 token keyed with the PEM are 403")
        func es256() async throws {
            let key = ES256PrivateKey()
            let publicPEM = key.publicKey.pemRepresentation
            try await Self.withJWTRelay(key: publicPEM) { relay, _ in
                let good = try await AuthJWT.es256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 300), route: "/vnc"), key: key)
                try await AuthClient.expectWorks(relay, path: "/vnc", token: good, via: .subprotocol)

                let otherKey = try await AuthJWT.es256(AuthTestClaims(route: "/vnc"), key: ES256PrivateKey())
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: otherKey).status == 403)

                // Algorithm confusion: the public key text used as an HMAC secret must not verify.
                let confused = try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: publicPEM)
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: confused).status == 403)

                let expired = try await AuthJWT.es256(AuthTestClaims(exp: Date(timeIntervalSinceNow: -3_600), route: "/vnc"), key: key)
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: expired).status == 403)
            }
        }

        @Test("a JWKS file: a token whose kid names its key works; another key under that kid is 403")
        func jwks() async throws {
            let key = ES256PrivateKey()
            let document = try AuthJWT.jwks(key, kid: "relay-key-1")
            try await Self.withJWTRelay(key: document) { relay, _ in
                let good = try await AuthJWT.es256(AuthTestClaims(route: "/vnc"), key: key, kid: "relay-key-1")
                try await AuthClient.expectWorks(relay, path: "/vnc", token: good)

                let impostor = try await AuthJWT.es256(AuthTestClaims(route: "/vnc"), key: ES256PrivateKey(), kid: "relay-key-1")
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: impostor).status == 403)
                let unknownKid = try await AuthJWT.es256(AuthTestClaims(route: "/vnc"), key: ES256PrivateKey(), kid: "who-knows")
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: unknownKid).status == 403)
            }
        }

        @Test("--jwt-enforce-expiry-on-session: the session ends with 1008 'token expired' when the token does")
        func expiryOnSession() async throws {
            let secret = AuthJWT.hmacSecret()
            let adjust: (inout AuthOptions) -> Void = {
                $0.enforceExpiryOnSession = true
                $0.jwtLeeway = .zero
            }
            try await Self.withJWTRelay(key: secret, adjust: adjust) { relay, _ in
                let clock = ContinuousClock()
                let started = clock.now
                let shortLived = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 2), route: "/vnc"), secret: secret)
                let unlimited = try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: secret)
                let expiring = try await AuthClient.session(relay, path: "/vnc", token: shortLived)
                let lasting = try await AuthClient.session(relay, path: "/vnc", token: unlimited)
                defer {
                    expiring.channel.close(promise: nil)
                    lasting.channel.close(promise: nil)
                }
                try await AuthClient.expectEcho(expiring, "before expiry")

                let close = try await expiring.waitForClose(timeout: .seconds(6))
                let elapsed = started.duration(to: clock.now)
                #expect(close == WSCloseInfo(code: 1008, reason: "token expired"))
                #expect(elapsed >= .milliseconds(1_500), "closed too early: \(elapsed)")
                #expect(elapsed < .seconds(5), "closed too late: \(elapsed)")

                // A token without exp is not cut off.
                try await AuthClient.expectEcho(lasting, "after the other expired")
                #expect(lasting.isActive)
                _ = try? await lasting.close(timeout: .seconds(3))
            }
        }

        @Test("without --jwt-enforce-expiry-on-session a session outlives its token")
        func noExpiryOnSessionByDefault() async throws {
            let secret = AuthJWT.hmacSecret()
            try await Self.withJWTRelay(key: secret, adjust: { $0.jwtLeeway = .zero }) { relay, _ in
                let shortLived = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 1), route: "/vnc"), secret: secret)
                let client = try await AuthClient.session(relay, path: "/vnc", token: shortLived)
                defer { client.channel.close(promise: nil) }
                try await Task.sleep(for: .milliseconds(1_600))
                try await AuthClient.expectEcho(client, "still relayed after exp")
                // The same token is refused for a new session now.
                #expect(try await AuthClient.refusal(relay, path: "/vnc", token: shortLived).status == 403)
            }
        }
    }
}
