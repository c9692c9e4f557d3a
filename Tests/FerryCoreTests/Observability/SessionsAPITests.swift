import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import FerryCore

/// The sessions API's parts without sockets: what a request asks for, and who may ask.
@Suite("Sessions API: requests and access")
struct SessionsAPIPartsTests {
    @Test("paths and methods map to list, close one, close a token's; bad ones say what to send")
    func parse() throws {
        #expect(try SessionsRequest.parse(method: .GET, uri: "/sessions") == .list)
        #expect(try SessionsRequest.parse(method: .GET, uri: "/sessions?x=1") == .list)
        #expect(try SessionsRequest.parse(method: .DELETE, uri: "/sessions/42") == .closeOne(id: 42, code: 1008))
        #expect(try SessionsRequest.parse(method: .DELETE, uri: "/sessions/42?code=4001") == .closeOne(id: 42, code: 4001))
        #expect(try SessionsRequest.parse(method: .DELETE, uri: "/sessions?token=ab12cd") == .closeByToken(fingerprint: "ab12cd", code: 1008))
        #expect(try SessionsRequest.parse(method: .GET, uri: "/metrics") == nil)
        #expect(try SessionsRequest.parse(method: .GET, uri: "/sessionsx") == nil)

        func refusal(_ method: HTTPMethod, _ uri: String) -> SessionsRequest.Refusal? {
            do {
                _ = try SessionsRequest.parse(method: method, uri: uri)
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal(.DELETE, "/sessions/42?code=1000")?.status == .badRequest, "only application codes 4000-4999")
        #expect(refusal(.DELETE, "/sessions/42?code=5000")?.message.contains("4000 to 4999") == true)
        #expect(refusal(.DELETE, "/sessions")?.message.contains("?token=FINGERPRINT") == true)
        #expect(refusal(.DELETE, "/sessions/abc")?.status == .notFound)
        #expect(refusal(.POST, "/sessions")?.status == .methodNotAllowed)
        #expect(refusal(.GET, "/sessions/42")?.status == .notFound)
    }

    @Test("a token guards every request; without one the sessions API is served on loopback only")
    func access() {
        let open = AdminAccess(token: nil, address: ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(open.allows(authorization: nil))
        #expect(open.servesSessions)
        #expect(!AdminAccess(token: nil, address: ListenAddress(host: "0.0.0.0", port: 9090)).servesSessions)
        #expect(AdminAccess(token: nil, address: ListenAddress(host: "[::1]", port: 9090)).servesSessions)
        #expect(AdminAccess(token: nil, address: ListenAddress(host: "localhost", port: 9090)).servesSessions)

        let guarded = AdminAccess(token: "s3cret", address: ListenAddress(host: "0.0.0.0", port: 9090))
        #expect(guarded.servesSessions)
        #expect(guarded.allows(authorization: "Bearer s3cret"))
        #expect(guarded.allows(authorization: "bearer s3cret"))
        #expect(!guarded.allows(authorization: nil))
        #expect(!guarded.allows(authorization: "Bearer s3cre"))
        #expect(!guarded.allows(authorization: "Bearer s3cret2"))
        #expect(!guarded.allows(authorization: "Basic s3cret"))
        #expect(!guarded.allows(authorization: "Bearer"))
    }

    @Test("without a token, the sessions API answers only to a loopback name or an IP address in Host (DNS rebinding)")
    func hostGuard() {
        let open = AdminAccess(token: nil, loopbackOnly: true)
        for host in ["127.0.0.1:9090", "localhost:9090", "LOCALHOST", "[::1]:9090", "10.1.2.3:9090", "127.0.0.1"] {
            #expect(open.allowsHost(host), "\(host)")
        }
        for host in ["evil.example:9090", "evil.example", "127.0.0.1.nip.io:9090", "[::1", "", nil] as [String?] {
            #expect(!open.allowsHost(host), "\(host ?? "none")")
        }
        #expect(AdminAccess(token: "t", loopbackOnly: true).allowsHost("ferry-admin.internal:9090"), "with a token, the token guards")
    }

    @Test("the listing: one object per session, the same keys in each, no token")
    func listing() throws {
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let json = SessionsListing.json([
            (id: 7, facts: LiveSessionFacts(client: "192.0.2.1:5000", route: "/vnc", target: "127.0.0.1:5900", tokenFingerprint: "0123456789ab", started: started),
             counters: LiveSessionCounters(bytesToBackend: 10, bytesToClient: 20, lastActivity: started)),
            (id: 3, facts: LiveSessionFacts(client: "192.0.2.2:5001", via: "10.0.0.1:40000", route: "/ssh", target: "unix:/run/ssh.sock", clientCertificateCN: "alice", started: started),
             counters: LiveSessionCounters(bytesToBackend: 0, bytesToClient: 0, lastActivity: started)),
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["count"] as? Int == 2)
        let sessions = try #require(object["sessions"] as? [[String: Any]])
        #expect(sessions.map { $0["id"] as? String } == ["3", "7"], "oldest first")
        #expect(Set(sessions[0].keys) == Set(sessions[1].keys))
        #expect(sessions[0]["via"] as? String == "10.0.0.1:40000")
        #expect(sessions[0]["client_cert_cn"] as? String == "alice")
        #expect(sessions[0]["token"] is NSNull)
        #expect(sessions[1]["token"] as? String == "0123456789ab")
        #expect(sessions[1]["bytes_to_client"] as? Int == 20)
        #expect(sessions[1]["started"] as? String == "2027-01-15T08:00:00Z")
    }

    @Test("--admin-token reads the file's first line, and needs --admin-listen")
    func flags() async throws {
        try await AuthTempFolder.with { folder in
            let file = try folder.write("admin-token", "  s3cret  \nignored\n")
            let (configuration, _) = try FerryFlags.configuration(["--listen", "127.0.0.1:6080", "--route", "/=127.0.0.1:5900", "--admin-listen", "127.0.0.1:9090", "--admin-token", file])
            #expect(configuration.adminToken == "s3cret")
            let alone = FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=127.0.0.1:5900", "--admin-token", file])
            #expect(alone?.flag == "--admin-token")
            #expect("\(alone.map { "\($0)" } ?? "")".contains("--admin-listen"))
            let empty = try folder.write("empty", "\n")
            #expect(FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=127.0.0.1:5900", "--admin-listen", "127.0.0.1:9090", "--admin-token", empty])?.flag == "--admin-token")
            #expect(FerryFlags.problem(["--listen", "127.0.0.1:6080", "--route", "/=127.0.0.1:5900", "--admin-listen", "127.0.0.1:9090", "--admin-token", folder.path + "/missing"])?.flag == "--admin-token")
        }
    }
}

extension OperationsTests {
    /// `GET /sessions` and `DELETE /sessions…` on a real admin port, against live sessions.
    @Suite("Sessions API (real sockets)")
    struct SessionsAPITests {
        /// A relay with an admin port, an open route `/open` and a token route `/vnc`, both to `echo`.
        static func withRelay<T: Sendable>(
            echo: String,
            tokenFile: String,
            adminHost: String = "127.0.0.1",
            adminToken: String? = nil,
            _ body: (RunningRelay, SocketAddress) async throws -> T
        ) async throws -> T {
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [try Route.parse("/vnc=\(echo),auth=token"), try Route.parse("/open=\(echo)")],
                limits: Relay.testLimits(),
                auth: AuthRelay.options { $0.tokenFilePath = tokenFile },
                adminListen: ListenAddress(host: adminHost, port: 0),
                adminToken: adminToken
            )
            let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
            return try await Relay.serving(server) { relay in
                let bound = try #require(relay.server.adminAddress)
                // Reached over loopback whatever the admin port is bound to.
                let admin = try SocketAddress(ipAddress: "127.0.0.1", port: bound.port!)
                return try await body(relay, admin)
            }
        }

        /// One request on a fresh connection; the response whatever its status.
        static func request(_ method: String, _ path: String, to admin: SocketAddress, bearer: String? = nil) async throws -> HTTPTestResponse {
            let client = try await WSTestClient.open(to: admin)
            do {
                var text = "\(method) \(path) HTTP/1.1\r\nHost: \(PlainHTTP.hostHeader(admin))\r\nConnection: close\r\n"
                if let bearer { text += "Authorization: Bearer \(bearer)\r\n" }
                text += "\r\n"
                try await client.sendRaw(Array(text.utf8))
                let response = try await client.readResponse()
                await client.shutdown()
                return response
            } catch {
                await client.shutdown()
                throw error
            }
        }

        static func sessions(_ admin: SocketAddress, bearer: String? = nil) async throws -> [[String: Any]] {
            let response = try await self.request("GET", "/sessions", to: admin, bearer: bearer)
            try #require(response.status == 200, "\(response)")
            #expect(response.value("Content-Type") == "application/json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            return try #require(object["sessions"] as? [[String: Any]])
        }

        @Test("GET lists each live session with its route, target, token fingerprint and bytes; DELETE ends one with 1008 or ?code=")
        func listAndClose() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("admin-list")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(token): \(echo.target)\n")
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file) { relay, admin in
                        #expect(try await Self.sessions(admin).isEmpty)

                        let withToken = try await WSTestClient.upgrade(relay, path: "/vnc", protocols: ["binary", "bearer.\(token)"])
                        let open = try await WSTestClient.upgrade(relay, path: "/open")
                        try await withToken.send(binary: [UInt8](repeating: 7, count: 100))
                        _ = try await withToken.receiveBytes(count: 100)

                        let listed = try await Self.sessions(admin)
                        #expect(listed.count == 2, "\(listed)")
                        let vnc = try #require(listed.first { $0["route"] as? String == "/vnc" })
                        #expect(vnc["target"] as? String == "\(echo.target)")
                        #expect(vnc["token"] as? String == PresentedToken.fingerprint(of: token))
                        #expect(vnc["bytes_to_backend"] as? Int == 100)
                        #expect(vnc["bytes_to_client"] as? Int == 100)
                        #expect((vnc["client"] as? String)?.hasPrefix("127.0.0.1:") == true)
                        #expect(vnc["started"] is String && vnc["last_activity"] is String)
                        let raw = try await Self.request("GET", "/sessions", to: admin)
                        #expect(!raw.body.contains(token), "the token itself never appears")

                        let vncID = try #require(vnc["id"] as? String)
                        let closed = try await Self.request("DELETE", "/sessions/\(vncID)", to: admin)
                        #expect(closed.status == 200, "\(closed)")
                        let vncClose = try await withToken.waitForClose()
                        #expect(vncClose.code == 1008)
                        #expect(vncClose.reason == "closed by administrator")

                        let openID = try #require(listed.first { $0["route"] as? String == "/open" }?["id"] as? String)
                        #expect(try await Self.request("DELETE", "/sessions/\(openID)?code=4001", to: admin).status == 200)
                        #expect(try await open.waitForClose().code == 4001)

                        #expect(try await Self.request("DELETE", "/sessions/999999", to: admin).status == 404)
                        #expect(try await Self.request("DELETE", "/sessions/\(openID)?code=1000", to: admin).status == 400)
                        #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
                        #expect(try await Self.sessions(admin).isEmpty)
                        await withToken.shutdown()
                        await open.shutdown()
                    }
                }
            }
        }

        @Test("DELETE /sessions?token= ends every session of that token and no other")
        func closeByToken() async throws {
            try await withAuthEchoBackend { echo in
                let token = authRandomToken("admin-token")
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "\(token): \(echo.target)\n")
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file) { relay, admin in
                        let first = try await WSTestClient.upgrade(relay, path: "/vnc", protocols: ["binary", "bearer.\(token)"])
                        let second = try await WSTestClient.upgrade(relay, path: "/vnc", protocols: ["binary", "bearer.\(token)"])
                        let open = try await WSTestClient.upgrade(relay, path: "/open")
                        let response = try await Self.request("DELETE", "/sessions?token=\(PresentedToken.fingerprint(of: token))", to: admin)
                        #expect(response.status == 200)
                        #expect(response.body.contains("\"closed\":2"), "\(response.body)")
                        #expect(try await first.waitForClose().code == 1008)
                        #expect(try await second.waitForClose().code == 1008)
                        try await open.send(binary: [1, 2, 3])
                        #expect(Array(try await open.receiveBytes(count: 3).readableBytesView) == [1, 2, 3], "the open route's session goes on")
                        // Closed sessions leave the list once their connections are gone.
                        for client in [first, second] { try await client.sendClose(code: 1008) }
                        #expect(await Relay.eventually { relay.server.environment.registry.count == 1 })
                        #expect(try await Self.sessions(admin).count == 1)
                        for client in [first, second, open] { await client.shutdown() }
                    }
                }
            }
        }

        @Test("--admin-token: every admin request needs the bearer token, /metrics included")
        func tokenGuards() async throws {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "")
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file, adminToken: "adm1n-s3cret") { _, admin in
                        let missing = try await Self.request("GET", "/sessions", to: admin)
                        #expect(missing.status == 401)
                        #expect(missing.value("WWW-Authenticate")?.hasPrefix("Bearer") == true)
                        #expect(try await Self.request("GET", "/metrics", to: admin).status == 401)
                        #expect(try await Self.request("GET", "/sessions", to: admin, bearer: "wrong").status == 401)
                        #expect(try await Self.request("GET", "/metrics", to: admin, bearer: "adm1n-s3cret").status == 200)
                        #expect(try await Self.sessions(admin, bearer: "adm1n-s3cret").isEmpty)
                    }
                }
            }
        }

        @Test("GET / is the live page, self-contained, served without the token; a foreign Host gets 403 without one")
        func page() async throws {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "")
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file, adminToken: "adm1n-s3cret") { _, admin in
                        let page = try await Self.request("GET", "/", to: admin)
                        #expect(page.status == 200)
                        #expect(page.value("Content-Type") == "text/html; charset=utf-8")
                        #expect(page.value("Content-Security-Policy")?.contains("default-src 'none'") == true)
                        #expect(page.body.contains("<title>Ferry: live sessions</title>"))
                        #expect(!page.body.contains("src=\"http") && !page.body.contains("href=\"http"), "nothing loaded from elsewhere")
                    }
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file) { _, admin in
                        let client = try await WSTestClient.open(to: admin)
                        try await client.sendRaw(Array("GET /sessions HTTP/1.1\r\nHost: rebound.example:9090\r\nConnection: close\r\n\r\n".utf8))
                        let rebound = try await client.readResponse()
                        await client.shutdown()
                        #expect(rebound.status == 403, "\(rebound)")
                        #expect(try await Self.request("GET", "/", to: admin).status == 200)
                    }
                }
            }
        }

        @Test("an admin port on a non-loopback address without --admin-token serves /metrics but not the sessions API")
        func nonLoopbackNeedsToken() async throws {
            try await withAuthEchoBackend { echo in
                try await AuthTempFolder.with { folder in
                    let file = try folder.write("tokens", "")
                    try await Self.withRelay(echo: "\(echo.target)", tokenFile: file, adminHost: "0.0.0.0") { _, admin in
                        #expect(try await Self.request("GET", "/metrics", to: admin).status == 200)
                        let sessions = try await Self.request("GET", "/sessions", to: admin)
                        #expect(sessions.status == 403)
                        #expect(sessions.body.contains("--admin-token"), "\(sessions.body)")
                        #expect(try await Self.request("DELETE", "/sessions/1", to: admin).status == 403)
                    }
                }
            }
        }
    }
}
