import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

extension AuthTests {
    @Suite("Failure limit (real sockets)")
    struct RateLimitTests {
        @Test("more than failureLimit bad tokens from 127.0.0.1 get 429 until the window passes")
        func tooManyFailures() async throws {
            try await withAuthEchoBackend { echo in
                let good = authRandomToken("good")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(good): \(echo.target)\n")
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.failureLimit = 3
                        $0.failureWindow = .seconds(2)
                    }
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth) { relay in
                        // Missing tokens are not failed guesses.
                        for _ in 0..<5 {
                            #expect(try await AuthClient.refusal(relay, path: "/vnc", token: nil).status == 401)
                        }
                        let clock = ContinuousClock()
                        let firstFailure = clock.now
                        for attempt in 1...3 {
                            let response = try await AuthClient.refusal(relay, path: "/vnc", token: authRandomToken("guess-\(attempt)"))
                            #expect(response.status == 403, "attempt \(attempt): \(response)")
                        }
                        let blocked = try await AuthClient.refusal(relay, path: "/vnc", token: authRandomToken("guess-4"))
                        #expect(blocked.status == 429, "\(blocked)")
                        #expect(blocked.body.contains("too many"))
                        // While blocked, even the right token (and no token) is answered 429.
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: good).status == 429)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: nil).status == 429)
                        #expect(echo.accepted == 0)

                        // After the window the right token works again.
                        let waited = firstFailure.duration(to: clock.now)
                        if waited < .milliseconds(2_200) { try await Task.sleep(for: .milliseconds(2_200) - waited) }
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: good)
                    }
                }
            }
        }

        @Test("a failure window under a second still blocks")
        func subSecondWindow() async throws {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(authRandomToken("good")): \(echo.target)\n")
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.failureLimit = 1
                        $0.failureWindow = .milliseconds(800)
                    }
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth) { relay in
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: authRandomToken("guess-1")).status == 403)
                        // Authorizer.swift builds the limiter's window from `failureWindow.components.seconds`
                        // only, so 800 ms becomes a zero window and nothing is ever blocked.
                        let second = try await AuthClient.refusal(relay, path: "/vnc", token: authRandomToken("guess-2"))
                        #expect(second.status == 429, "\(second)")
                    }
                }
            }
        }
    }

    @Suite("Tokens stay out of logs (real sockets)")
    struct TokenLogTests {
        @Test("log lines carry fingerprints, never tokens", arguments: [LogFormat.text, .json])
        func tokensNotLogged(format: LogFormat) async throws {
            try await withAuthEchoBackend { echo in
                let capture = AuthLogCapture()
                let secret = AuthJWT.hmacSecret()
                let good = authRandomToken("logged-good")
                let revoked = authRandomToken("logged-revoked")
                let wrong = authRandomToken("logged-wrong")
                let broken = authRandomToken("logged-broken")
                let jwt = try await AuthJWT.hs256(AuthTestClaims(exp: Date(timeIntervalSinceNow: 300), route: "/vnc"), secret: secret)
                let badJWT = try await AuthJWT.hs256(AuthTestClaims(route: "/vnc"), secret: AuthJWT.hmacSecret())
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(good): \(echo.target)\n\(revoked): \(echo.target)\n")
                    let keyFile = try folder.write("jwt-key", secret)
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.jwtKeyPath = keyFile
                        $0.tokenCookie = "ferry_token"
                    }
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth, logger: capture.logger(format: format)) { relay in
                        for carrier in [TokenCarrier.subprotocol, .cookie("ferry_token"), .header, .query] {
                            try await AuthClient.expectWorks(relay, path: "/vnc", token: good, via: carrier)
                            #expect(try await AuthClient.refusal(relay, path: "/vnc", token: wrong, via: carrier).status == 403)
                        }
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: jwt, via: .query)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: badJWT, via: .query).status == 403)

                        // A revoked session, and a reload that fails on a line holding a token.
                        let session = try await AuthClient.session(relay, path: "/vnc", token: revoked, via: .query)
                        try folder.write("tokens", "\(good): \(echo.target)\n")
                        #expect(relay.tokenFile?.reload() == true)
                        #expect(try await session.waitForClose(timeout: .seconds(5)).code == 1008)
                        await session.shutdown()
                        try folder.write("tokens", "\(good): \(echo.target)\n\(broken) \(echo.target)\n")
                        #expect(relay.tokenFile?.reload() == false)

                        // Sessions log their summary when they end; wait for all six.
                        let ended = await Relay.eventually(timeout: .seconds(5)) {
                            capture.text.components(separatedBy: "session ended").count - 1 >= 6
                        }
                        #expect(ended, "not every session logged its end:\n\(capture.text)")
                    }
                }
                let log = capture.text
                #expect(log.contains("handshake refused"))
                #expect(log.contains("token file reload failed"))
                for token in [good, revoked, wrong, broken, jwt, badJWT] {
                    #expect(!log.contains(token), "a token is in the log:\n\(log)")
                }
                // Nor the JWT's signature alone, or the secret.
                #expect(!log.contains(String(jwt.split(separator: ".")[2])))
                #expect(!log.contains(secret))
                for token in [good, revoked, jwt] {
                    #expect(log.contains(PresentedToken.fingerprint(of: token)), "no fingerprint for a session's token:\n\(log)")
                }
            }
        }

        @Test("a failed reload of a CRLF token file does not log the file's tokens")
        func crlfReloadLog() async throws {
            try await withAuthEchoBackend { echo in
                let capture = AuthLogCapture()
                let first = authRandomToken("crlf-first")
                let second = authRandomToken("crlf-second")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(first): \(echo.target)\n")
                    let auth = AuthRelay.options { $0.tokenFilePath = file }
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth, logger: capture.logger()) { relay in
                        try folder.write("tokens", "\(first): \(echo.target)\r\n\(second): \(echo.target)\r\n")
                        _ = relay.tokenFile?.reload()
                    }
                }
                // A failed reload's error must not quote another line's token.
                #expect(!capture.text.contains(second), "\(capture.text)")
            }
        }
    }
}
