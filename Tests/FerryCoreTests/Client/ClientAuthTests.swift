import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// Tokens in each carrier, and Basic credentials, against the in-process relay's `auth=token`
    /// and `--basic-auth` checks; the relay's refusals as `ferry connect` reports them.
    @Suite("Credentials (real sockets)")
    struct CredentialTests {
        /// A relay with `/vnc` behind `auth=token` (its token file holds `good`), the cookie carrier
        /// read from `token`; `body` gets the relay and the token.
        static func withTokenRelay<T: Sendable>(_ body: (RunningRelay, String) async throws -> T) async throws -> T {
            try await withAuthEchoBackend { echo in
                let good = authRandomToken("good")
                return try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(good): \(echo.target)\n")
                    let auth = AuthRelay.options {
                        $0.tokenFilePath = file
                        $0.tokenCookie = "token"
                    }
                    return try await AuthRelay.with(routes: [try Route.parse("/vnc=\(echo.target),auth=token")], auth: auth) { relay in
                        try await body(relay, good)
                    }
                }
            }
        }

        /// One echo through `ferry connect --listen` with `request`; true if it came back.
        static func echoWorks(_ url: String, _ request: UpgradeRequestOptions) async throws -> Bool {
            let configuration = try ClientRun.configuration(url) { $0.request = request }
            return try await ClientRun.listening(configuration) { _, addresses in
                let client = try await LocalTestClient.connect(to: addresses[0])
                defer { Task { await client.close() } }
                try await client.send(ByteBuffer(string: "ping"))
                let echoed = try? await client.receive(count: 4, timeout: .seconds(5))
                return echoed.map { String(buffer: $0) } == "ping"
            }
        }

        @Test("the token reaches the relay in each carrier", arguments: UpgradeRequestOptions.TokenCarrier.allCases)
        func carriers(carrier: UpgradeRequestOptions.TokenCarrier) async throws {
            try await Self.withTokenRelay { relay, token in
                var request = UpgradeRequestOptions()
                request.token = token
                request.tokenCarrier = carrier
                let works = try await Self.echoWorks(ClientRun.url(relay, path: "/vnc"), request)
                #expect(works)
                var wrong = request
                wrong.token = token + "x"
                let wrongWorks = try await Self.echoWorks(ClientRun.url(relay, path: "/vnc"), wrong)
                #expect(!wrongWorks, "a wrong token is refused")
            }
        }

        @Test("a wrong token through the ferry executable: status 5 and the relay's words", .enabled(if: FerryExecutable.path != nil))
        func refusalMessage() async throws {
            try await Self.withTokenRelay { relay, token in
                let connect = try StdioConnect([ClientRun.url(relay, path: "/vnc"), "--token", "not-" + token])
                #expect(await connect.waitForExit() == ConnectExitStatus.refused.rawValue)
                #expect(connect.errorOutput.contains("ferry connect: the relay refused the session: 403 "), "\(connect.errorOutput)")
                #expect(!connect.errorOutput.contains(token), "the token is never repeated")

                let missing = try StdioConnect([ClientRun.url(relay, path: "/vnc")])
                #expect(await missing.waitForExit() == ConnectExitStatus.refused.rawValue)
                #expect(missing.errorOutput.contains("ferry connect: the relay refused the session: 401 "), "\(missing.errorOutput)")
            }
        }

        @Test("--token-file through the ferry executable: the session works", .enabled(if: FerryExecutable.path != nil))
        func tokenFile() async throws {
            try await Self.withTokenRelay { relay, token in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("my-token", "\(token)\n")
                    let connect = try StdioConnect([ClientRun.url(relay, path: "/vnc"), "--token-file", file, "--token-in", "header"])
                    try await connect.send(Array("hi\n".utf8))
                    #expect(try await connect.receive(count: 3) == Array("hi\n".utf8))
                    try connect.closeInput()
                    #expect(await connect.waitForExit() == 0, "\(connect.errorOutput)")
                }
            }
        }

        @Test("--basic-auth and --origin reach the relay; headers go as given")
        func basicAuthOriginAndHeaders() async throws {
            let server = try await ScriptedWebSocketServer.start(.upgradeThenClose(code: 1000, reason: ""))
            defer { Task { await server.close() } }
            var request = UpgradeRequestOptions()
            request.basicAuth = HeaderField(name: "alice", value: "s3cret")
            request.origin = "https://app.example"
            request.headers = [HeaderField(name: "X-Request-Id", value: "42")]
            request.token = "t0ken/with=chars"
            request.tokenCarrier = .query
            _ = try await Self.echoWorks(server.url + "?view=1", request)
            let head = try #require(try await server.requests.next(timeout: .seconds(5)))
            #expect(head.hasPrefix("GET /scripted?view=1&token=t0ken%2Fwith%3Dchars HTTP/1.1\r\n"), "\(head)")
            #expect(head.contains("\r\nAuthorization: Basic YWxpY2U6czNjcmV0"))
            #expect(head.contains("\r\nOrigin: https://app.example"))
            #expect(head.contains("\r\nX-Request-Id: 42"))
            #expect(head.contains("\r\nSec-WebSocket-Protocol: binary\r\n"), "no token in the subprotocols with --token-in query")
            #expect(head.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
        }
    }
}
