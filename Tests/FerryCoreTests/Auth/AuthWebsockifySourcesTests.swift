import Crypto
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import Testing

@testable import FerryCore

/// The token sources and rules added for websockify's plugins: file-name tokens, socket folders,
/// host-name tokens, `--allow-target any`, websockify-style JWT keys, listed-only origins.
extension AuthTests {
    @Suite("websockify's token sources (real sockets)")
    struct WebsockifySourceTests {
        @Test("--token-filenames: the file name is the token, its content the target; removing the file revokes")
        func tokenFilenames() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("file")
                try await AuthTempFolder.with { folder in
                    let tokens = try folder.subfolder("tokens")
                    try "\(echo.target)\n".write(toFile: tokens + "/" + token, atomically: true, encoding: .utf8)
                    try "127.0.0.1:1\n".write(toFile: tokens + "/other", atomically: true, encoding: .utf8)
                    let auth = AuthRelay.options {
                        $0.tokenFilenamesPath = tokens
                        $0.allowsAnyTarget = true
                    }
                    try await AuthRelay.with(routes: [Route(path: "/", target: .dynamic)], auth: auth) { relay in
                        try await AuthClient.expectWorks(relay, path: "/websockify", token: token, via: .query)
                        let unknown = try await AuthClient.refusal(relay, path: "/websockify", token: authRandomToken("nope"), via: .query)
                        #expect(unknown.status == 403, "\(unknown)")

                        let live = try await AuthClient.handshake(relay, path: "/websockify", token: token, via: .query)
                        #expect(live.response.status == 101)
                        try FileManager.default.removeItem(atPath: tokens + "/" + token)
                        for reloadable in relay.server.reloadables { _ = reloadable.reload() }
                        #expect(try await live.waitForClose(timeout: .seconds(5)) == WSCloseInfo(code: 1008, reason: "token revoked"))
                        await live.shutdown()
                    }
                }
            }
        }

        @Test("--token-filenames refuses a file that names no target, naming the file")
        func tokenFilenamesBadFile() async throws {
            try await AuthTempFolder.with { folder in
                let tokens = try folder.subfolder("tokens")
                try "no port here\n".write(toFile: tokens + "/abc", atomically: true, encoding: .utf8)
                #expect(throws: ConfigurationError.self) {
                    try TokenFileSource(path: tokens, layout: .fileNames, logger: Relay.logger)
                }
                do {
                    _ = try TokenFileSource(path: tokens, layout: .fileNames, logger: Relay.logger)
                } catch let error as ConfigurationError {
                    #expect(error.flag == "--token-filenames")
                    #expect(error.value.hasSuffix("/abc"))
                }
            }
        }

        @Test("--token-sockets: a token names a socket in the folder; other names and escapes are refused")
        func tokenSockets() async throws {
            try await AuthTempFolder.with { folder in
                // sun_path is short: keep the socket folder near the root.
                let sockets = "/tmp/ferry-sock-\(UInt32.random(in: 0...UInt32.max))"
                try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: sockets) }
                let echo = try await TestBackend.start(.echo, unixSocketPath: sockets + "/console-1")
                defer { Task { await echo.close() } }
                try folder.write("plain", "not a socket")
                try "x".write(toFile: sockets + "/regular", atomically: true, encoding: .utf8)
                let auth = AuthRelay.options { $0.tokenSocketFolder = sockets }
                try await AuthRelay.with(routes: [Route(path: "/", target: .dynamic)], auth: auth) { relay in
                    try await AuthClient.expectWorks(relay, path: "/", token: "console-1", via: .query)
                    for bad in ["console-2", "regular", "..", ".", "../\(sockets.split(separator: "/").last!)/console-1", "%2e%2e"] {
                        let refused = try await AuthClient.refusal(relay, path: "/", token: bad, via: .query)
                        #expect(refused.status == 403, "\(bad): \(refused)")
                    }
                }
                await echo.close()
            }
        }

        @Test("--allow-target any: a token's target needs no rule; without it the same token is refused")
        func allowAnyTarget() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("any")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(token): \(echo.target)\n")
                    let trusting = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.allowsAnyTarget = true
                    }
                    try await AuthRelay.with(routes: [Route(path: "/", target: .dynamic)], auth: trusting) { relay in
                        try await AuthClient.expectWorks(relay, path: "/", token: token)
                    }
                    let strict = AuthRelay.options { $0.tokenFilePath = file }
                    try await AuthRelay.with(routes: [Route(path: "/", target: .dynamic)], auth: strict) { relay in
                        let refused = try await AuthClient.refusal(relay, path: "/", token: token)
                        #expect(refused.status == 403)
                        #expect(refused.body.contains("target not allowed"))
                    }
                }
            }
        }

        @Test("--token-from-host: the Host name is the token; query and header tokens are not read")
        func tokenFromHost() async throws {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "console7.example.test: \(echo.target)\nqueried: \(echo.target)\n")
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.tokenFromHost = true
                        $0.allowsAnyTarget = true
                    }
                    try await AuthRelay.with(routes: [Route(path: "/", target: .dynamic)], auth: auth) { relay in
                        let client = try await WSTestClient.connect(to: relay, path: "/", headers: [("Host", "console7.example.test:6080")], removing: ["Host"])
                        #expect(client.response.status == 101, "\(client.response)")
                        try await AuthClient.expectEcho(client, "by host")
                        await client.shutdown()
                        let byQuery = try await WSTestClient.connect(to: relay, path: "/?token=queried", headers: [("Host", "unknown.example.test")], removing: ["Host"])
                        #expect(byQuery.response.status == 403, "\(byQuery.response)")
                        await byQuery.shutdown()
                    }
                }
            }
        }
    }

    @Suite("websockify's token rules (units)")
    struct WebsockifyRuleTests {
        @Test("Host carrier: port removed, IPv6 brackets kept, nothing else read")
        func hostCarrier() {
            func head(_ host: String?, uri: String = "/?token=q") -> HTTPRequestHead {
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
                if let host { head.headers.add(name: "Host", value: host) }
                head.headers.add(name: "Authorization", value: "Bearer header-token")
                return head
            }
            #expect(PresentedToken.find(in: head("abc.example.com:6080"), cookieName: nil, fromHost: true) == PresentedToken(value: "abc.example.com", carrier: .host))
            #expect(PresentedToken.find(in: head("abc.example.com"), cookieName: nil, fromHost: true)?.value == "abc.example.com")
            #expect(PresentedToken.find(in: head("[::1]:6080"), cookieName: nil, fromHost: true)?.value == "[::1]")
            #expect(PresentedToken.find(in: head(nil), cookieName: nil, fromHost: true) == nil)
            #expect(PresentedToken.find(in: head("abc.example.com"), cookieName: nil)?.carrier == .authorizationHeader)
        }

        @Test("--basic-auth: USER:PASSWORD and @FILE; 401 with a challenge, 403 when malformed; values never in errors")
        func basicCredentials() async throws {
            func headers(_ value: String?) -> HTTPHeaders {
                var headers = HTTPHeaders()
                if let value { headers.add(name: "Authorization", value: value) }
                return headers
            }
            func basic(_ text: String) -> String { "Basic " + Data(text.utf8).base64EncodedString() }
            let credentials = BasicCredentials(pairs: try BasicCredentials.parse("alice:s3:cret"))
            #expect(credentials.check(headers(basic("alice:s3:cret"))) == nil)
            #expect(credentials.check(headers("basic " + Data("alice:s3:cret".utf8).base64EncodedString())) == nil)
            let missing = try #require(credentials.check(headers(nil)))
            #expect(missing.status == .unauthorized && missing.headers.first(name: "WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
            #expect(credentials.check(headers(basic("alice:wrong")))?.status == .unauthorized)
            #expect(credentials.check(headers(basic("bob:s3:cret")))?.status == .unauthorized)
            #expect(credentials.check(headers("Basic %%%"))?.status == .forbidden)
            #expect(credentials.check(headers("Bearer token"))?.status == .unauthorized)

            try await AuthTempFolder.with { folder in
                let file = try folder.write("users", "# operators\nalice:one\nbob:two\n")
                let fromFile = BasicCredentials(pairs: try BasicCredentials.parse("@" + file))
                #expect(fromFile.check(headers(basic("bob:two"))) == nil)
                let bad = try folder.write("bad", "alice\n")
                #expect(throws: ConfigurationError.self) { try BasicCredentials.parse("@" + bad) }
            }
            do {
                _ = try BasicCredentials.parse("nocolon-secret")
                Issue.record("a value without ':' was accepted")
            } catch {
                #expect(!error.description.contains("nocolon-secret"), "\(error)")
            }
        }

        @Test("--only-listed-origins: listed origins only; no Origin and the relay's own host are refused")
        func onlyListedOrigins() {
            let strict = OriginPolicy(allowed: ["https://a.example"], onlyListed: true, serverNames: ["relay.example"])
            #expect(strict.allows(origin: "https://a.example", host: "relay.example"))
            #expect(strict.allows(origin: "https://A.example/", host: "relay.example"))
            #expect(!strict.allows(origin: "https://b.example", host: "relay.example"))
            #expect(!strict.allows(origin: nil, host: "relay.example"))
            #expect(!strict.allows(origin: "https://relay.example", host: "relay.example"))
            let usual = OriginPolicy(allowed: ["https://a.example"], serverNames: ["relay.example"])
            #expect(usual.allows(origin: nil, host: "relay.example"))
            #expect(usual.allows(origin: "https://relay.example", host: "relay.example:6080"))
        }

        @Test("JWT: a base64url secret (websockify's JWK 'k'), a port written as a string, a private PEM key")
        func websockifyJWTKeys() async throws {
            try await AuthTempFolder.with { folder in
                let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
                let keyFile = try folder.write("jwt.key", AuthJWT.base64URL(secret) + "\n")
                let verifier = try await JWTVerifier(keyPath: keyFile, issuer: nil, audience: nil, leeway: .seconds(30), secretEncoding: .base64url)
                let header = AuthJWT.base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
                let payload = AuthJWT.base64URL(Array(#"{"host":"10.1.2.3","port":"5901"}"#.utf8))
                let mac = HMAC<SHA256>.authenticationCode(for: Array("\(header).\(payload)".utf8), using: SymmetricKey(data: secret))
                let token = "\(header).\(payload).\(AuthJWT.base64URL(Array(mac)))"
                let claims = try await verifier.verify(token)
                #expect(claims.host == "10.1.2.3")
                #expect(claims.port?.value == 5901)
                #expect(Authorizer.target(of: claims, route: Route(path: "/", target: .dynamic)) == .tcp(host: "10.1.2.3", port: 5901))

                // Read raw, the same file is a different secret: the token does not verify.
                let raw = try await JWTVerifier(keyPath: keyFile, issuer: nil, audience: nil, leeway: .seconds(30))
                await #expect(throws: JWTVerifier.Failure.invalid) { try await raw.verify(token) }

                // A private key file verifies tokens signed with it.
                let privateKey = ES256PrivateKey()
                let pemFile = try folder.write("es256.pem", privateKey.pemRepresentation)
                let fromPrivate = try await JWTVerifier(keyPath: pemFile, issuer: nil, audience: nil, leeway: .seconds(30))
                let signed = try await AuthJWT.es256(AuthTestClaims(host: "vnc.internal", port: 5900), key: privateKey)
                #expect(try await fromPrivate.verify(signed).port?.value == 5900)
            }
        }

        @Test("--jwt-secret-encoding base64url refuses text that is not base64url, and short secrets")
        func base64urlErrors() async throws {
            try await AuthTempFolder.with { folder in
                let bad = try folder.write("bad.key", "not*base64url!")
                await #expect(throws: ConfigurationError.self) {
                    _ = try await JWTVerifier(keyPath: bad, issuer: nil, audience: nil, leeway: .seconds(30), secretEncoding: .base64url)
                }
                let short = try folder.write("short.key", AuthJWT.base64URL(Array(repeating: 7, count: 16)))
                do {
                    _ = try await JWTVerifier(keyPath: short, issuer: nil, audience: nil, leeway: .seconds(30), secretEncoding: .base64url)
                    Issue.record("a 16-byte secret was accepted")
                } catch let error as ConfigurationError {
                    #expect(error.problem.contains("shorter than 32 bytes"))
                }
            }
        }
    }
}
