import Foundation
import NIOCore
import Testing

@testable import FerryCommandLine
@testable import FerryCore

/// Pools: the order state without a channel (each balance mode, back-off), the route table that makes
/// a pool of repeated `--route` flags, and real sessions through a relay with live and dead targets.
@Suite("Unit: backend pools")
struct BackendPoolUnitTests {
    static let a = BackendTarget.tcp(host: "10.0.0.1", port: 1883)
    static let b = BackendTarget.tcp(host: "10.0.0.2", port: 1883)
    static let c = BackendTarget.tcp(host: "10.0.0.3", port: 1883)

    static func pool(_ balance: RouteOptions.Balance?) -> Route {
        var options = RouteOptions()
        options.balance = balance
        return Route(path: "/mqtt", pool: [a, b, c], options: options)
    }

    @Test("round-robin starts each session at the next target; a single target is not balanced")
    func roundRobin() {
        var state = BackendPoolState()
        let now = NIODeadline.now()
        let firsts = (0..<6).map { _ in state.order(Self.pool(nil), client: "x", now: now) { _ in 0 }.first! }
        #expect(firsts == [Self.a, Self.b, Self.c, Self.a, Self.b, Self.c])
        #expect(state.order(Self.pool(.roundRobin), client: "x", now: now) { _ in 0 } == [Self.a, Self.b, Self.c])
        #expect(state.order(Route(path: "/one", target: Self.a), client: "x", now: now) { _ in 0 } == [Self.a])
    }

    @Test("least-sessions tries the target with the fewest live sessions first; ties share in turn")
    func leastSessions() {
        var state = BackendPoolState()
        let now = NIODeadline.now()
        let counts = [Self.a: 5, Self.b: 1, Self.c: 3]
        #expect(state.order(Self.pool(.leastSessions), client: "x", now: now) { counts[$0]! } == [Self.b, Self.c, Self.a])
        let even = (0..<3).map { _ in state.order(Self.pool(.leastSessions), client: "x", now: now) { _ in 0 }.first! }
        #expect(Set(even) == [Self.a, Self.b, Self.c])
    }

    @Test("hash-client: one address always starts at the same target, also on another replica; a down target passes it to the next")
    func hashClient() {
        var one = BackendPoolState()
        var other = BackendPoolState()
        let now = NIODeadline.now()
        let route = Self.pool(.hashClient)
        let first = one.order(route, client: "198.51.100.7", now: now) { _ in 0 }
        for _ in 0..<5 { #expect(one.order(route, client: "198.51.100.7", now: now) { _ in 0 } == first) }
        #expect(other.order(route, client: "198.51.100.7", now: now) { _ in 0 } == first, "every replica agrees")
        let starts = Set((0..<64).map { one.order(route, client: "203.0.113.\($0)", now: now) { _ in 0 }.first! })
        #expect(starts.count == 3, "addresses spread over the pool")
        one.failed(first[0], now: now)
        let around = one.order(route, client: "198.51.100.7", now: now) { _ in 0 }
        #expect(around == Array(first.dropFirst()), "the next target in the ring, without the down one")
        one.succeeded(first[0])
        #expect(one.order(route, client: "198.51.100.7", now: now) { _ in 0 } == first, "back to its own once up")
    }

    @Test("a failed target is skipped for 1 s, doubling per failure in a row up to 30 s; when all are down, the soonest back is tried first")
    func backoff() {
        var state = BackendPoolState()
        let now = NIODeadline.now()
        state.failed(Self.a, now: now)
        #expect(state.health[Self.a.description] == .init(failures: 1, downUntil: now + .seconds(1)))
        #expect(!state.order(Self.pool(nil), client: "x", now: now + .milliseconds(999)) { _ in 0 }.contains(Self.a))
        #expect(state.order(Self.pool(.roundRobin), client: "x", now: now + .seconds(1)) { _ in 0 }.contains(Self.a))
        for _ in 0..<10 { state.failed(Self.a, now: now) }
        #expect(state.health[Self.a.description]?.downUntil == now + .seconds(30))
        state.failed(Self.b, now: now)
        state.failed(Self.c, now: now + .milliseconds(500))
        #expect(state.order(Self.pool(nil), client: "x", now: now) { _ in 0 } == [Self.b, Self.c, Self.a])
        state.succeeded(Self.a)
        #expect(state.health[Self.a.description] == nil)
    }

    @Test("repeated --route flags make a pool; options on one hold for all; conflicts, dynamic and a repeated target are refused")
    func routeTable() throws {
        let (configuration, _) = try FerryFlags.configuration(baseArguments(route: ["/mqtt=10.0.0.1:1883", "/mqtt=10.0.0.2:1883,balance=least-sessions,proxy-protocol=v2", "/vnc=127.0.0.1:5900"]))
        let mqtt = try #require(configuration.routes.routes.first { $0.path == "/mqtt" })
        #expect(mqtt.targets == [.tcp(host: "10.0.0.1", port: 1883), .tcp(host: "10.0.0.2", port: 1883)])
        #expect(mqtt.options.balance == .leastSessions && mqtt.options.sendsProxyHeader)
        #expect(mqtt.description == "/mqtt=10.0.0.1:1883|10.0.0.2:1883")
        #expect(configuration.routes.routes.first { $0.path == "/vnc" }?.isPool == false)
        let refusals: [([String], String)] = [
            (["/x=a:1", "/x=a:1"], "routed twice to a:1"),
            (["/x=dynamic", "/x=a:1"], "a dynamic route cannot be a pool"),
            (["/x=a:1,proxy-protocol=v2", "/x=b:1,client-cn=alice"], "give different options"),
            (["/x=a:1,balance=hash-client", "/x=b:1,balance=round-robin"], "different balance= modes"),
            (["/x=a:1,balance=fastest"], "unknown balance 'fastest'"),
        ]
        for (routes, problem) in refusals {
            let error = FerryFlags.problem(baseArguments(route: routes))
            #expect(error?.problem.contains(problem) == true, "\(routes): \(String(describing: error))")
        }
        // A pool with a tls:// member after a plain one still gets the backend TLS contexts.
        let (mixed, _) = try FerryFlags.configuration(baseArguments(route: ["/x=127.0.0.1:1", "/x=tls://127.0.0.1:2"]))
        let server = try FerryServer(configuration: mixed, group: IntegrationLoops.group, logger: Relay.logger)
        #expect(server.environment.connector.tls != nil)
        // The file's form: targets as a list.
        let settings = try ConfigFileReader.parse("routes:\n  - path: /mqtt\n    targets: [10.0.0.1:1883, 10.0.0.2:1883]\n    balance: hash-client\n", path: "f.yaml")
        #expect(settings.first?.values == ["/mqtt=10.0.0.1:1883,balance=hash-client", "/mqtt=10.0.0.2:1883"])
    }
}

extension IntegrationTests {
    @Suite("Backend pools (real sockets)")
    struct BackendPoolTests {
        static func pool(_ targets: [BackendTarget], balance: RouteOptions.Balance? = nil) -> Route {
            var options = RouteOptions()
            options.balance = balance
            return Route(path: "/pool", pool: targets, options: options)
        }

        /// A loopback port with nothing listening (connections to it are refused).
        static func deadTarget() async throws -> BackendTarget {
            .tcp(host: "127.0.0.1", port: try await FreePort.on())
        }

        static func open(_ relay: RunningRelay) async throws -> WSTestClient {
            let client = try await WSTestClient.connect(to: relay, path: "/pool")
            try client.checkUpgraded()
            return client
        }

        @Test("one dead target: every client still gets 101, the dead one is tried once and then skipped, and /metrics counts it")
        func oneDeadTarget() async throws {
            let live = try await TestBackend.start(.echo)
            defer { Task { await live.close() } }
            let dead = try await Self.deadTarget()
            try await Relay.with(routes: [Self.pool([dead, live.target])]) { relay in
                for index in 0..<6 {
                    let client = try await Self.open(relay)
                    try await AuthClient.expectEcho(client, "session \(index)")
                    await client.shutdown()
                }
                #expect(live.accepted == 6)
                let health = try #require(relay.server.environment.handshake.pools.health(of: dead))
                // Once, then skipped while backing off (1 s): again only if the six took longer than
                // that, as on a machine stalled by a full test run.
                #expect((1...3).contains(health.failures), "tried once, then skipped while backing off (\(health.failures))")
                let metrics = relay.server.metrics.exposition()
                #expect(metrics.contains(#"ferry_pool_target_failures_total{route="/pool",target="\#(dead)"} \#(health.failures)"#), "\(metrics)")
            }
        }

        @Test("every target dead: 502, after trying each within the one handshake budget")
        func allDead() async throws {
            let first = try await Self.deadTarget()
            let second = try await Self.deadTarget()
            try await Relay.with(routes: [Self.pool([first, second])]) { relay in
                let client = try await WSTestClient.connect(to: relay, path: "/pool")
                #expect(client.response.status == 502, "\(client.response)")
                await client.shutdown()
                #expect(relay.server.environment.handshake.pools.health(of: first)?.failures == 1)
                #expect(relay.server.environment.handshake.pools.health(of: second)?.failures == 1)
            }
        }

        @Test("round-robin spreads sessions evenly; least-sessions fills the emptier target; hash-client keeps one client on one target")
        func balanceModes() async throws {
            let a = try await TestBackend.start(.echo)
            let b = try await TestBackend.start(.echo)
            defer { Task { await a.close(); await b.close() } }

            try await Relay.with(routes: [Self.pool([a.target, b.target])]) { relay in
                for _ in 0..<6 { await (try await Self.open(relay)).shutdown() }
                let onA = await a.waitForAccepted(3)
                let onB = await b.waitForAccepted(3)
                #expect(onA && onB, "round-robin: \(a.accepted) and \(b.accepted)")
                #expect(a.accepted == 3 && b.accepted == 3)
            }

            let aBefore = a.accepted
            let bBefore = b.accepted
            try await Relay.with(routes: [Self.pool([a.target, b.target], balance: .leastSessions)]) { relay in
                var held: [WSTestClient] = []
                for _ in 0..<4 { held.append(try await Self.open(relay)) }
                let twoOnA = await a.waitForAccepted(aBefore + 2)
                let twoOnB = await b.waitForAccepted(bBefore + 2)
                #expect(twoOnA && twoOnB, "least-sessions: \(a.accepted - aBefore) and \(b.accepted - bBefore)")
                #expect(a.accepted - aBefore == 2 && b.accepted - bBefore == 2)
                #expect(relay.server.environment.registry.liveSessions(onTarget: a.target.description) == 2)
                let metrics = relay.server.metrics.exposition()
                #expect(metrics.contains(#"ferry_pool_target_sessions_active{route="/pool",target="\#(a.target)"} 2"#), "\(metrics)")
                // The sessions on A end: the next two both go to A.
                let onA = held.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
                for client in held where onA.contains(where: { $0 === client }) { await client.shutdown() }
                #expect(await Relay.eventually { relay.server.environment.registry.liveSessions(onTarget: a.target.description) == 0 })
                let aMiddle = a.accepted
                let bMiddle = b.accepted
                for _ in 0..<2 { held.append(try await Self.open(relay)) }
                #expect(await a.waitForAccepted(aMiddle + 2), "the emptier target took both")
                #expect(b.accepted == bMiddle)
                for client in held { await client.shutdown() }
            }

            let aHash = a.accepted
            let bHash = b.accepted
            try await Relay.with(routes: [Self.pool([a.target, b.target], balance: .hashClient)]) { relay in
                for _ in 0..<6 { await (try await Self.open(relay)).shutdown() }
                _ = await Relay.eventually { a.accepted - aHash + b.accepted - bHash == 6 }
                let spread = (a.accepted - aHash, b.accepted - bHash)
                #expect(spread == (6, 0) || spread == (0, 6), "hash-client: one client, one target (\(spread))")
            }
        }

        @Test("a reload keeps a pool's health, and a pool can be added by editing the routes")
        func reloadKeepsPools() async throws {
            let live = try await TestBackend.start(.echo)
            defer { Task { await live.close() } }
            let dead = try await Self.deadTarget()
            try await Relay.with(routes: [Route(path: "/pool", target: live.target)]) { relay in
                var next = relay.server.environment.configuration
                next.routes = try RouteTable([Self.pool([dead, live.target])])
                let change = relay.server.reload(to: next)
                #expect(change.summary == "routes ~/pool", "\(change.summary)")
                for _ in 0..<3 { await (try await Self.open(relay)).shutdown() }
                #expect(await live.waitForAccepted(3))
                #expect((1...2).contains(relay.server.environment.handshake.pools.health(of: dead)?.failures ?? 0))
            }
        }
    
        @Test("--reload-grace: a reload that drops a pool member ends that member's sessions with 1001; the rest of the pool goes on")
        func reloadDropsPoolMember() async throws {
            let a = try await TestBackend.start(.echo)
            let b = try await TestBackend.start(.echo)
            defer { Task { await a.close(); await b.close() } }
            try await Relay.with(routes: [Self.pool([a.target, b.target])]) { relay in
                let onA = try await Self.open(relay)
                let onB = try await Self.open(relay)
                #expect(relay.server.environment.registry.liveSessions(onTarget: b.target.description) == 1)
                var next = relay.server.environment.configuration
                next.routes = try RouteTable([Route(path: "/pool", target: a.target)])
                next.limits.reloadGrace = .milliseconds(100)
                #expect(relay.server.reload(to: next).summary == "routes ~/pool")
                let close = try await onB.waitForClose(timeout: .seconds(3))
                #expect(close == WSCloseInfo(code: 1001, reason: "route removed"))
                try await AuthClient.expectEcho(onA, "still on A")
                await onA.shutdown()
                await onB.shutdown()
            }
        }
    
        @Test("a reload changes limits for what comes after it: a lower --max-connections refuses new sessions (503) and closes none; a higher one admits again")
        func liveLimits() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/pool", target: backend.target)]) { relay in
                let first = try await Self.open(relay)
                let second = try await Self.open(relay)
                var next = relay.server.environment.configuration
                next.limits.maxConnections = 2
                next.limits.idleTimeout = .seconds(300)
                let change = relay.server.reload(to: next)
                #expect(change.summary == "limits maxConnections idleTimeout", "\(change.summary)")
                #expect(relay.server.environment.limits.maxConnections == 2)
                let refused = try await WSTestClient.connect(to: relay, path: "/pool")
                #expect(refused.response.status == 503, "\(refused.response)")
                await refused.shutdown()
                try await AuthClient.expectEcho(first, "open before the reload")
                next.limits.maxConnections = 3
                _ = relay.server.reload(to: next)
                let third = try await Self.open(relay)
                try await AuthClient.expectEcho(third, "admitted again")
                for client in [first, second, third] { await client.shutdown() }
            }
        }
    }
}
