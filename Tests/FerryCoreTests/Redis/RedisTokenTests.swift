import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCommandLine
@testable import FerryCore

/// `--token-redis` against a real `redis-server` on a loopback port: lookups, revocation across two
/// relays sharing one Redis (notifications, expiry, the periodic recheck), Redis going away and
/// coming back, a wrong password, and websockify's TokenRedis command line.
@Suite(
    "Redis tokens (real redis-server)",
    .serialized,
    .enabled(if: OutsideTools.have("redis-server", "redis-cli"), OutsideTools.installHint("redis-server", "redis-cli"))
)
struct RedisTokenTests {
    static func auth(_ url: String, allow: [String] = [], caPath: String? = nil) throws -> AuthOptions {
        AuthRelay.options {
            $0.redis = try? RedisEndpoint.parse(url)
            $0.redisCAPath = caPath
            $0.allowedTargets = allow.compactMap { try? TargetRule.parse($0) }
        }
    }

    @Test("lookups: host:port, JSON and unix values; unknown token 403; another target 403; allowlist on dynamic routes")
    func lookups() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with(password: "pw-\(UUID().uuidString.prefix(6))") { redis in
                let plain = authRandomToken("plain")
                let json = authRandomToken("json")
                let other = authRandomToken("other")
                let garbage = authRandomToken("garbage")
                let port = echo.address.port!
                try await redis.cli("SET", "ns:\(plain)", "127.0.0.1:\(port)")
                try await redis.cli("SET", "ns:\(json)", #"{"host": "127.0.0.1", "port": \#(port)}"#)
                try await redis.cli("SET", "ns:\(other)", "127.0.0.1:9")
                try await redis.cli("SET", "ns:\(garbage)", "not a target")
                try await redis.cli("SET", plain, "127.0.0.1:9")  // outside the namespace: never read
                let routes = [try Route.parse("/vnc=\(echo.target),auth=token"), try Route.parse("/any=dynamic,auth=token")]
                let logs = AuthLogCapture()
                try await AuthRelay.with(routes: routes, auth: try Self.auth(redis.url(suffix: "?namespace=ns"), allow: ["127.0.0.1:\(port)"]), logger: logs.logger()) { relay in
                    try await AuthClient.expectWorks(relay, path: "/vnc", token: plain)
                    try await AuthClient.expectWorks(relay, path: "/vnc", token: json, via: .query)
                    try await AuthClient.expectWorks(relay, path: "/any", token: plain, via: .subprotocol)
                    try await AuthClient.expectWorks(relay, path: "/any", token: json)

                    let unknown = try await AuthClient.refusal(relay, path: "/vnc", token: authRandomToken("unknown"))
                    #expect(unknown.status == 403 && unknown.body.contains("invalid token"), "\(unknown)")
                    let elsewhere = try await AuthClient.refusal(relay, path: "/vnc", token: other)
                    #expect(elsewhere.status == 403 && elsewhere.body.contains("not valid for this route"), "\(elsewhere)")
                    let notAllowed = try await AuthClient.refusal(relay, path: "/any", token: other)
                    #expect(notAllowed.status == 403 && notAllowed.body.contains("target not allowed"), "\(notAllowed)")
                    let bad = try await AuthClient.refusal(relay, path: "/vnc", token: garbage)
                    #expect(bad.status == 403, "\(bad)")
                    #expect(echo.accepted == 4)
                }
                #expect(logs.text.contains("names no target") && logs.text.contains(PresentedToken.fingerprint(of: garbage)))
                for secret in [plain, json, other, garbage, redis.password!] {
                    #expect(!logs.text.contains(secret), "the log holds a secret")
                }
            }
        }
    }

    /// Two relays (replicas) sharing one Redis, each with a session for `token` and one for `staying`.
    static func fleet(
        redis: RedisTestServer,
        echo: TestBackend,
        caPath: String? = nil,
        _ body: (_ token: String, _ doomed: [WSTestClient], _ survivors: [WSTestClient]) async throws -> Void
    ) async throws {
        let token = authRandomToken("fleet")
        let staying = authRandomToken("staying")
        try await redis.cli("SET", "ferry:\(token)", echo.target.description)
        try await redis.cli("SET", "ferry:\(staying)", echo.target.description)
        let routes = [try Route.parse("/vnc=\(echo.target),auth=token")]
        let auth = try Self.auth(redis.url(suffix: "?namespace=ferry"), caPath: caPath)
        try await AuthRelay.with(routes: routes, auth: auth) { first in
            try await AuthRelay.with(routes: routes, auth: auth) { second in
                var doomed: [WSTestClient] = []
                var survivors: [WSTestClient] = []
                defer { for client in doomed + survivors { client.channel.close(promise: nil) } }
                for relay in [first, second] {
                    doomed.append(try await AuthClient.session(relay, path: "/vnc", token: token))
                    survivors.append(try await AuthClient.session(relay, path: "/vnc", token: staying))
                }
                for client in doomed + survivors { try await AuthClient.expectEcho(client, "before") }
                try await body(token, doomed, survivors)
                for client in survivors { try await AuthClient.expectEcho(client, "still here") }
                let refused = try await AuthClient.refusal(first, path: "/vnc", token: token)
                #expect(refused.status == 403, "\(refused)")
            }
        }
    }

    /// Waits for each client's close and checks it is 1008 "token revoked", within `limit` of `since`.
    static func expectRevoked(_ clients: [WSTestClient], since: ContinuousClock.Instant, within limit: Duration) async throws {
        for client in clients {
            let close = try await client.waitForClose(timeout: limit + .seconds(3))
            #expect(close == WSCloseInfo(code: 1008, reason: "token revoked"))
        }
        let took = since.duration(to: ContinuousClock.now)
        #expect(took < limit, "revocation took \(took)")
    }

    @Test("fleet revocation: one DEL closes the token's sessions on both replicas with 1008 within 2 s")
    func fleetDelete() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with { redis in
                try await Self.fleet(redis: redis, echo: echo) { token, doomed, _ in
                    let started = ContinuousClock.now
                    #expect(try await redis.cli("DEL", "ferry:\(token)") == "1")
                    try await Self.expectRevoked(doomed, since: started, within: .seconds(2))
                }
            }
        }
    }

    @Test("rediss://: verified against --token-redis-ca, lookups and fleet revocation over TLS; an untrusted server means 503, logged")
    func overTLS() async throws {
        let pki = try TestPKI.shared()
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with(password: "tls-pw", tls: .init(pair: pki.localhost, caPath: pki.caPath)) { redis in
                #expect(redis.url().hasPrefix("rediss://"))
                try await Self.fleet(redis: redis, echo: echo, caPath: pki.caPath) { token, doomed, _ in
                    let started = ContinuousClock.now
                    #expect(try await redis.cli("DEL", "ferry:\(token)") == "1")
                    try await Self.expectRevoked(doomed, since: started, within: .seconds(2))
                }
                // The same server, but the relay does not trust its CA: the token is never asked about.
                let token = authRandomToken("tls")
                try await redis.cli("SET", "ferry:\(token)", echo.target.description)
                let logs = AuthLogCapture()
                let routes = [try Route.parse("/vnc=\(echo.target),auth=token")]
                try await AuthRelay.with(routes: routes, auth: try Self.auth(redis.url(suffix: "?namespace=ferry")), logger: logs.logger()) { relay in
                    let refused = try await AuthClient.refusal(relay, path: "/vnc", token: token)
                    #expect(refused.status == 503, "\(refused)")
                }
                #expect(logs.text.contains("Redis token store unavailable"), "\(logs.text)")
                #expect(!logs.text.contains("tls-pw") && !logs.text.contains(token))
            }
        }
    }

    @Test("expiry: a key with a short TTL revokes its sessions when it expires")
    func expiry() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with { redis in
                try await Self.fleet(redis: redis, echo: echo) { token, doomed, _ in
                    #expect(try await redis.cli("PEXPIRE", "ferry:\(token)", "800") == "1")
                    let started = ContinuousClock.now
                    try await Self.expectRevoked(doomed, since: started, within: .milliseconds(2800))
                }
            }
        }
    }

    @Test("without keyspace notifications, the periodic recheck still revokes within 2 s")
    func fallbackRecheck() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with(notifications: false) { redis in
                #expect(try await redis.cli("CONFIG", "GET", "notify-keyspace-events").hasSuffix("notify-keyspace-events"))
                try await Self.fleet(redis: redis, echo: echo) { token, doomed, _ in
                    let started = ContinuousClock.now
                    #expect(try await redis.cli("UNLINK", "ferry:\(token)") == "1")
                    try await Self.expectRevoked(doomed, since: started, within: .seconds(2))
                }
            }
        }
    }

    @Test("a key set to another target revokes; set to the same target does not")
    func changedTarget() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with { redis in
                try await Self.fleet(redis: redis, echo: echo) { token, doomed, _ in
                    try await redis.cli("SET", "ferry:\(token)", echo.target.description)
                    try await Task.sleep(for: .milliseconds(1500))
                    for client in doomed { try await AuthClient.expectEcho(client, "same target") }
                    let started = ContinuousClock.now
                    try await redis.cli("SET", "ferry:\(token)", "127.0.0.1:9")
                    try await Self.expectRevoked(doomed, since: started, within: .seconds(2))
                }
            }
        }
    }

    @Test("Redis down: new handshakes get 503, live sessions go on; after a restart on the same port handshakes work again")
    func redisDown() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with(password: "down-pw") { redis in
                let token = authRandomToken("down")
                try await redis.cli("SET", token, echo.target.description)
                let logs = AuthLogCapture()
                let routes = [try Route.parse("/vnc=\(echo.target),auth=token")]
                try await AuthRelay.with(routes: routes, auth: try Self.auth(redis.url()), logger: logs.logger()) { relay in
                    let live = try await AuthClient.session(relay, path: "/vnc", token: token)
                    defer { live.channel.close(promise: nil) }
                    try await AuthClient.expectEcho(live, "before")

                    // Saved first, as a Redis that persists its data comes back with its keys: a
                    // restart that came back empty would rightly revoke the token at the next recheck.
                    #expect(try await redis.cli("SAVE") == "OK")
                    await redis.stop(removingFolder: false)
                    let refused = try await AuthClient.refusal(relay, path: "/vnc", token: token)
                    #expect(refused.status == 503 && refused.body.contains("token store unavailable"), "\(refused)")
                    // The recheck cannot read the key; that is no reason to end the session.
                    try await Task.sleep(for: .milliseconds(1500))
                    try await AuthClient.expectEcho(live, "during the outage")
                    #expect(await Relay.eventually(timeout: .seconds(5)) { logs.text.contains("Redis token store unavailable") })

                    try await redis.restart()
                    #expect(try await redis.cli("GET", token) == echo.target.description, "the key came back with the saved data")
                    let clock = ContinuousClock()
                    let deadline = clock.now.advanced(by: .seconds(15))
                    var status = 0
                    while clock.now < deadline {
                        let client = try await AuthClient.handshake(relay, path: "/vnc", token: token)
                        status = Int(client.response.status)
                        await client.shutdown()
                        if status == 101 { break }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    #expect(status == 101)
                    #expect(logs.text.contains("Redis token store reachable again"))
                    try await AuthClient.expectEcho(live, "after")
                    #expect(logs.text.components(separatedBy: "Redis token store unavailable;").count == 2, "one warning per outage")
                    #expect(!logs.text.contains("down-pw") && !logs.text.contains(token))
                }
            }
        }
    }

    @Test("a wrong or missing password is a start-up error naming --token-redis, without the password")
    func wrongPassword() async throws {
        try await RedisTestServer.with(password: "right-pw") { redis in
            for (url, reply) in [(redis.url(password: "wrong-pw"), "WRONGPASS"), (redis.url(password: ""), "NOAUTH")] {
                let configuration = try FerryConfiguration(
                    listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                    routes: [try Route.parse("/vnc=127.0.0.1:9,auth=token")],
                    auth: try Self.auth(url)
                )
                let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
                do {
                    try await server.start()
                    Issue.record("started with \(url)")
                    await server.stop()
                } catch let error as ConfigurationError {
                    #expect(error.flag == "--token-redis", "\(error)")
                    #expect(error.description.contains(reply), "\(error)")
                    #expect(!error.description.contains("wrong-pw"), "\(error)")
                }
            }
        }
    }

    @Test("websockify's TokenRedis command line starts Ferry, which reads the token's JSON value from Redis")
    func websockifyCommandLine() async throws {
        try await withAuthEchoBackend { echo in
            try await RedisTestServer.with(password: "ws-pw") { redis in
                let token = authRandomToken("ws")
                try await redis.cli("SET", "app:\(token)", #"{"host": "\#(echo.target)"}"#)
                let port = try await FreePort.on()
                let translation = try WebsockifyCommandLine.translate(
                    ["--token-plugin", "TokenRedis", "--token-source", "127.0.0.1:\(redis.port):0:ws-pw:app", "127.0.0.1:\(port)"],
                    fileExists: { _ in false }
                )
                let (configuration, _) = try FerryFlags.configuration(translation.ferryArguments)
                let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
                try await Relay.serving(server) { relay in
                    try await AuthClient.expectWorks(relay, path: "/", token: token, via: .query)
                    let unknown = try await AuthClient.refusal(relay, path: "/", token: authRandomToken("nope"), via: .query)
                    #expect(unknown.status == 403, "\(unknown)")
                }
            }
        }
    }
}
