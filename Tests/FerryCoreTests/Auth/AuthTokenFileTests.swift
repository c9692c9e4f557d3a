import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// Starts an echo backend, runs `body`, and always closes the backend.
func withAuthEchoBackend<T>(_ body: (TestBackend) async throws -> T) async throws -> T {
    let backend = try await TestBackend.start(.echo)
    do {
        let result = try await body(backend)
        await backend.close()
        return result
    } catch {
        await backend.close()
        throw error
    }
}

extension AuthTests {
    @Suite("Token file (real sockets)")
    struct TokenFileTests {
        @Test(
            "auth=token: no token 401, wrong token 403, this target's token works, another target's 403",
            arguments: [TokenCarrier.subprotocol, .cookie("ferry_token"), .header, .query]
        )
        func staticRoute(carrier: TokenCarrier) async throws {
            try await withAuthEchoBackend { echo in
                let elsewhere = try await FreePort.on()
                let good = authRandomToken("good")
                let other = authRandomToken("other")
                let wrong = authRandomToken("wrong")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "# test tokens\n\(good): \(echo.target)\n\(other): 127.0.0.1:\(elsewhere)\n")
                    let routes = [try Route.parse("/vnc=\(echo.target),auth=token"), try Route.parse("/open=\(echo.target)")]
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.tokenCookie = "ferry_token"
                    }
                    try await AuthRelay.with(routes: routes, auth: auth) { relay in
                        let missing = try await AuthClient.refusal(relay, path: "/vnc", token: nil)
                        #expect(missing.status == 401, "\(missing)")

                        let refused = try await AuthClient.refusal(relay, path: "/vnc", token: wrong, via: carrier)
                        #expect(refused.status == 403, "\(refused)")
                        #expect(refused.body.contains("invalid token"))

                        let otherTarget = try await AuthClient.refusal(relay, path: "/vnc", token: other, via: carrier)
                        #expect(otherTarget.status == 403, "\(otherTarget)")
                        #expect(otherTarget.body.contains("not valid for this route"))

                        try await AuthClient.expectWorks(relay, path: "/vnc", token: good, via: carrier)
                        // A path below the route is the route.
                        try await AuthClient.expectWorks(relay, path: "/vnc/display-1", token: good, via: carrier)

                        // A route without auth=token needs nothing.
                        let open = try await WSTestClient.upgrade(relay, path: "/open")
                        try await AuthClient.expectEcho(open, "open route")
                        await open.shutdown()
                        #expect(echo.accepted == 3, "only the authorized sessions reached the backend")
                    }
                }
            }
        }

        @Test("bearer.TOKEN offered without binary is answered 400 naming binary, and the token is not repeated")
        func bearerAloneOverTheWire() async throws {
            try await withAuthEchoBackend { echo in
                let good = authRandomToken("good")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(good): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        let client = try await WSTestClient.connect(to: relay, path: "/vnc", protocols: [PresentedToken.subprotocolPrefix + good])
                        let response = client.response
                        await client.shutdown()
                        #expect(response.status == 400, "\(response)")
                        #expect(response.body.contains("binary"))
                        #expect(!response.description.contains(good))
                        #expect(echo.accepted == 0)
                    }
                }
            }
        }

        @Test("a cookie is not read when no cookie name is configured")
        func cookieNeedsName() async throws {
            try await withAuthEchoBackend { echo in
                let good = authRandomToken("good")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(good): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        let response = try await AuthClient.refusal(relay, path: "/vnc", token: good, via: .cookie("ferry_token"))
                        #expect(response.status == 401, "\(response)")
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: good, via: .header)
                    }
                }
            }
        }

        @Test("a token added to the file works after reloadIfChanged, without a restart")
        func reloadAddsToken() async throws {
            try await withAuthEchoBackend { echo in
                let first = authRandomToken("first")
                let added = authRandomToken("added")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(first): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        let tokenFile = try #require(relay.tokenFile)
                        #expect(tokenFile.count == 1)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: added).status == 403)

                        try folder.write("tokens", "\(first): \(echo.target)\n\(added): \(echo.target)\n")
                        tokenFile.reloadIfChanged()
                        #expect(tokenFile.count == 2)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: added)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: first)
                    }
                }
            }
        }

        @Test("a reload that finds a malformed line keeps the tokens in use")
        func malformedReloadKeepsTable() async throws {
            try await withAuthEchoBackend { echo in
                let kept = authRandomToken("kept")
                let alsoKept = authRandomToken("also-kept")
                let newcomer = authRandomToken("newcomer")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(kept): \(echo.target)\n\(alsoKept): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        let tokenFile = try #require(relay.tokenFile)
                        try folder.write("tokens", "\(kept): \(echo.target)\nthis line is broken\n\(newcomer): \(echo.target)\n")
                        #expect(tokenFile.reload() == false)
                        #expect(tokenFile.count == 2)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: kept)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: alsoKept)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: newcomer).status == 403)

                        // Polling does not retry the same broken file; fixing it is picked up.
                        tokenFile.reloadIfChanged()
                        #expect(tokenFile.count == 2)
                        try folder.write("tokens", "\(newcomer): \(echo.target)\n")
                        tokenFile.reloadIfChanged()
                        #expect(tokenFile.count == 1)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: newcomer)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: kept).status == 403)
                    }
                }
            }
        }

        @Test("removing a token closes its sessions with 1008 'token revoked'; other sessions stay open")
        func revocation() async throws {
            try await withAuthEchoBackend { echo in
                let revoked = authRandomToken("revoked")
                let staying = authRandomToken("staying")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(revoked): \(echo.target)\n\(staying): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        let tokenFile = try #require(relay.tokenFile)
                        let doomed = try await AuthClient.session(relay, path: "/vnc", token: revoked, via: .subprotocol)
                        let doomedToo = try await AuthClient.session(relay, path: "/vnc", token: revoked, via: .query)
                        let survivor = try await AuthClient.session(relay, path: "/vnc", token: staying)
                        defer {
                            for client in [doomed, doomedToo, survivor] { client.channel.close(promise: nil) }
                        }
                        try await AuthClient.expectEcho(doomed, "before")
                        try await AuthClient.expectEcho(survivor, "before")

                        try folder.write("tokens", "\(staying): \(echo.target)\n")
                        let clock = ContinuousClock()
                        let started = clock.now
                        #expect(tokenFile.reload())
                        for client in [doomed, doomedToo] {
                            let close = try await client.waitForClose(timeout: .seconds(5))
                            #expect(close == WSCloseInfo(code: 1008, reason: "token revoked"))
                        }
                        #expect(started.duration(to: clock.now) < .seconds(3))

                        try await AuthClient.expectEcho(survivor, "still here")
                        #expect(survivor.isActive)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: revoked).status == 403)
                        _ = try? await survivor.close(timeout: .seconds(3))
                    }
                }
            }
        }

        @Test("a token file saved with CRLF line ends works")
        func crlfFile() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("crlf")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "# saved on Windows\r\n\(token): \(echo.target)\r\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = file }) { relay in
                        // CRLF lines are lines: the token is there.
                        #expect(relay.tokenFile?.count == 1)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: token)
                    }
                }
            }
        }

        @Test("a folder of token files: every file's tokens work; hidden files and subfolders are skipped")
        func folderOfFiles() async throws {
            try await withAuthEchoBackend { echo in
                let (a, b, hidden, nested, added) = (authRandomToken("a"), authRandomToken("b"), authRandomToken("hidden"), authRandomToken("nested"), authRandomToken("added"))
                try await AuthTempFolder.with { folder in
                    let tokens = try folder.subfolder("tokens.d")
                    let sub = AuthTempFolder(path: tokens)
                    try sub.write("a.conf", "\(a): \(echo.target)\n")
                    try sub.write("b.conf", "# second file\n\(b): \(echo.target)\n")
                    try sub.write(".hidden", "\(hidden): \(echo.target)\n")
                    let nestedFolder = AuthTempFolder(path: try sub.subfolder("nested"))
                    try nestedFolder.write("c.conf", "\(nested): \(echo.target)\n")
                    try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: AuthRelay.options { $0.tokenFilePath = tokens }) { relay in
                        let tokenFile = try #require(relay.tokenFile)
                        #expect(tokenFile.count == 2)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: a)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: b)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: hidden).status == 403)
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: nested).status == 403)

                        // A new file in the folder is picked up; a removed one takes its tokens, and their sessions, with it.
                        try sub.write("d.conf", "\(added): \(echo.target)\n")
                        tokenFile.reloadIfChanged()
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: added)
                        let session = try await AuthClient.session(relay, path: "/vnc", token: a)
                        defer { session.channel.close(promise: nil) }
                        try sub.remove("a.conf")
                        tokenFile.reloadIfChanged()
                        #expect(tokenFile.count == 2)
                        #expect(try await session.waitForClose(timeout: .seconds(5)) == WSCloseInfo(code: 1008, reason: "token revoked"))
                        #expect(try await AuthClient.refusal(relay, path: "/vnc", token: a).status == 403)
                        try await AuthClient.expectWorks(relay, path: "/vnc", token: b)
                    }
                }
            }
        }
    }
}

extension AuthTests {
    @Suite("Token file deleted")
    struct TokenFileDeletedTests {
        @Test("a deleted token file keeps its tokens, says so at warning level, and is read again when it is back")
        func deletedKeepsTokens() async throws {
            try await AuthTempFolder.with { folder in
                let capture = AuthLogCapture()
                let path = try folder.write("tokens", "alpha: 127.0.0.1:5900\nbeta: 127.0.0.1:5901\n")
                let source = try TokenFileSource(path: path, logger: capture.logger())
                try folder.remove("tokens")
                #expect(source.reload() == false)
                #expect(source.count == 2, "the tokens in use stay")
                #expect(source.target(for: "alpha") == .tcp(host: "127.0.0.1", port: 5900))
                #expect(capture.text.contains("warning") && capture.text.contains("token file is gone; keeping its tokens"), "\(capture.text)")
                #expect(!capture.text.contains("alpha"), "no token in the log")
                // Emptying the file is how every token is revoked.
                try folder.write("tokens", "")
                #expect(source.reload())
                #expect(source.count == 0 && source.target(for: "alpha") == nil)
            }
        }
    }
}
