import NIOHTTP1
import Testing

@testable import FerryCore

@Suite("Unit: upgrade request classification")
struct UpgradeRequestUnitTests {
    @Test("a valid handshake is an upgrade without subprotocol")
    func valid() {
        let request = UpgradeRequest(upgradeHead())
        #expect(request == .upgrade(WebSocketHandshake(offeredSubprotocols: [], subprotocol: nil)))
    }

    @Test("header names and tokens are matched case-insensitively; Connection may list several tokens")
    func tolerantForms() {
        var head = upgradeHead(headers: [
            ("host", "relay.example"),
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ])
        #expect(UpgradeRequest(head) == .upgrade(WebSocketHandshake(offeredSubprotocols: [], subprotocol: nil)))
        head.headers.replaceOrAdd(name: "Connection", value: "UPGRADE")
        #expect(UpgradeRequest(head) == .upgrade(WebSocketHandshake(offeredSubprotocols: [], subprotocol: nil)))
    }

    @Test("an upgrade with a method other than GET gets 405", arguments: [HTTPMethod.POST, .PUT, .HEAD, .OPTIONS])
    func methodNotAllowed(method: HTTPMethod) {
        var head = upgradeHead()
        head.method = method
        let rejection = expectRejection(head, status: .methodNotAllowed)
        #expect(rejection?.headers["Allow"] == ["GET"])
    }

    @Test("an upgrade over HTTP/1.0 gets 400")
    func http10() {
        var head = upgradeHead()
        head.version = .http1_0
        expectRejection(head, status: .badRequest)
    }

    @Test("an upgrade without 'upgrade' in Connection gets 400")
    func missingConnectionUpgrade() {
        var head = upgradeHead()
        head.headers.remove(name: "Connection")
        expectRejection(head, status: .badRequest)
        head.headers.add(name: "Connection", value: "keep-alive")
        expectRejection(head, status: .badRequest)
    }

    @Test("an unsupported version gets 426 naming version 13", arguments: ["8", "7", "12", "14", "abc"])
    func unsupportedVersion(version: String) {
        var head = upgradeHead()
        head.headers.replaceOrAdd(name: "Sec-WebSocket-Version", value: version)
        let rejection = expectRejection(head, status: .upgradeRequired)
        #expect(rejection?.headers["Sec-WebSocket-Version"] == ["13"])
        #expect(rejection == .unsupportedVersion)
    }

    @Test("a missing or repeated version gets 426 naming version 13 (RFC 6455 §4.4)")
    func missingVersion() {
        var head = upgradeHead()
        head.headers.remove(name: "Sec-WebSocket-Version")
        #expect(expectRejection(head, status: .upgradeRequired)?.headers["Sec-WebSocket-Version"] == ["13"])
        head.headers.add(name: "Sec-WebSocket-Version", value: "13")
        head.headers.add(name: "Sec-WebSocket-Version", value: "13")
        #expect(expectRejection(head, status: .upgradeRequired)?.headers["Sec-WebSocket-Version"] == ["13"])
    }

    @Test("no Host, an empty one or two get 400 (RFC 7230 §5.4, RFC 6455 §4.2.1)", arguments: [[], [""], ["a.example", "b.example"], ["a.example", "a.example"]])
    func hostHeaders(hosts: [String]) {
        var head = upgradeHead()
        head.headers.remove(name: "Host")
        for host in hosts { head.headers.add(name: "Host", value: host) }
        #expect(expectRejection(head, status: .badRequest)?.message.contains("Host") == true)
    }

    @Test("two Origin headers get 400: the check must see the one the log shows")
    func twoOrigins() {
        var head = upgradeHead()
        head.headers.add(name: "Origin", value: "http://relay.example")
        head.headers.add(name: "Origin", value: "http://evil.example")
        #expect(expectRejection(head, status: .badRequest)?.message.contains("Origin") == true)
    }

    @Test(
        "a bad key gets 400",
        arguments: [
            nil,
            "",
            "dGhlIHNhbXBsZQ==",  // 10 bytes
            "dGhlIHNhbXBsZSBub25jZQ",  // no padding
            "dGhlIHNhbXBsZSBub25jZQ=",  // one = only
            "dGhlIHNhbXBsZSBub25jZ!==",  // not base64
            "dGhlIHNhbXBsZSBub25jZSBhZ2Fpbg==",  // 22 bytes
            "dGhl IHNhbXBsZSBub25jZQ==",  // a space inside
        ] as [String?]
    )
    func badKey(key: String?) {
        var head = upgradeHead()
        head.headers.remove(name: "Sec-WebSocket-Key")
        if let key { head.headers.add(name: "Sec-WebSocket-Key", value: key) }
        expectRejection(head, status: .badRequest)
    }

    @Test("two keys get 400")
    func twoKeys() {
        var head = upgradeHead()
        head.headers.add(name: "Sec-WebSocket-Key", value: "AAAAAAAAAAAAAAAAAAAAAA==")
        expectRejection(head, status: .badRequest)
    }

    @Test("valid keys of the base64 alphabet are accepted")
    func validKeys() {
        for key in ["AAAAAAAAAAAAAAAAAAAAAA==", "+/+/abcdefghijklmnopqg==", "0123456789zyxwvutsrqpw==", " dGhlIHNhbXBsZSBub25jZQ== "] {
            var head = upgradeHead()
            head.headers.replaceOrAdd(name: "Sec-WebSocket-Key", value: key)
            #expect(UpgradeRequest(head) == .upgrade(WebSocketHandshake(offeredSubprotocols: [], subprotocol: nil)), "\(key)")
        }
    }

    @Test("an offered 'binary' subprotocol is selected")
    func binarySubprotocol() {
        var head = upgradeHead()
        head.headers.add(name: "Sec-WebSocket-Protocol", value: "binary")
        #expect(UpgradeRequest(head) == .upgrade(WebSocketHandshake(offeredSubprotocols: ["binary"], subprotocol: "binary")))

        var several = upgradeHead()
        several.headers.add(name: "Sec-WebSocket-Protocol", value: "base64, binary")
        #expect(
            UpgradeRequest(several) == .upgrade(WebSocketHandshake(offeredSubprotocols: ["base64", "binary"], subprotocol: "binary"))
        )

        var separateHeaders = upgradeHead()
        separateHeaders.headers.add(name: "Sec-WebSocket-Protocol", value: "chat")
        separateHeaders.headers.add(name: "Sec-WebSocket-Protocol", value: "binary")
        #expect(
            UpgradeRequest(separateHeaders) == .upgrade(WebSocketHandshake(offeredSubprotocols: ["chat", "binary"], subprotocol: "binary"))
        )
    }

    @Test("no subprotocol offered selects none")
    func noSubprotocol() {
        guard case .upgrade(let handshake) = UpgradeRequest(upgradeHead()) else {
            Issue.record("expected an upgrade")
            return
        }
        #expect(handshake.subprotocol == nil)
        #expect(handshake.offeredSubprotocols.isEmpty)
    }

    @Test("only unsupported subprotocols offered gets 400")
    func unsupportedSubprotocols() {
        for offered in ["base64", "chat, mqtt"] {
            var head = upgradeHead()
            head.headers.add(name: "Sec-WebSocket-Protocol", value: offered)
            let rejection = expectRejection(head, status: .badRequest)
            #expect(rejection?.message.contains("binary") == true, "the message names the supported subprotocol")
        }
    }

    @Test("requests without Upgrade: websocket are plain")
    func plain() {
        #expect(UpgradeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")) == .plain)
        #expect(
            UpgradeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/index.html", headers: ["Host": "relay.example"])) == .plain
        )
        // Other methods and versions are plain too: the rules apply only to WebSocket upgrades.
        #expect(UpgradeRequest(HTTPRequestHead(version: .http1_0, method: .POST, uri: "/vnc")) == .plain)
        var h2c = upgradeHead()
        h2c.headers.replaceOrAdd(name: "Upgrade", value: "h2c")
        #expect(UpgradeRequest(h2c) == .plain)
    }
}

@Suite("Unit: upgrade policy")
struct UpgradePolicyUnitTests {
    private static let vnc = Route(path: "/vnc", target: .tcp(host: "127.0.0.1", port: 5900))
    private static let vncAdmin = Route(path: "/vnc/admin", target: .tcp(host: "127.0.0.1", port: 5901))
    private static let ssh = Route(path: "/ssh", target: .unix(path: "/run/ssh.sock"))
    private static let root = Route(path: "/", target: .tcp(host: "::1", port: 8080))
    private static let handshake = WebSocketHandshake(offeredSubprotocols: ["binary"], subprotocol: "binary")

    private func policy(_ routes: [Route], allowed: [String] = [], serverNames: [String] = ["relay.example"]) throws -> UpgradePolicy {
        UpgradePolicy(routes: try RouteTable(routes), originPolicy: OriginPolicy(allowed: allowed, serverNames: serverNames))
    }

    private func decide(_ policy: UpgradePolicy, uri: String, origin: String? = nil, host: String? = "relay.example:6080") -> Result<UpgradePlan, HandshakeRejection> {
        var head = upgradeHead(uri: uri)
        head.headers.remove(name: "Host")
        if let host { head.headers.add(name: "Host", value: host) }
        if let origin { head.headers.add(name: "Origin", value: origin) }
        return Result { () throws(HandshakeRejection) in try policy.decide(head: head, handshake: Self.handshake) }
    }

    @Test("no matching route gets 404")
    func noRoute() throws {
        let policy = try self.policy([Self.vnc, Self.ssh])
        for uri in ["/", "/other", "/vncx", "/ss", "/other?x=/vnc", "/VNC"] {
            guard case .failure(let rejection) = decide(policy, uri: uri) else {
                Issue.record("\(uri) should not match")
                continue
            }
            #expect(rejection.status == .notFound, "\(uri)")
        }
    }

    @Test("the longest matching route prefix wins")
    func longestPrefix() throws {
        let policy = try self.policy([Self.root, Self.vnc, Self.vncAdmin, Self.ssh])
        let cases: [(String, Route)] = [
            ("/vnc", Self.vnc),
            ("/vnc/", Self.vnc),
            ("/vnc/x", Self.vnc),
            ("/vnc/admin", Self.vncAdmin),
            ("/vnc/admin/deeper", Self.vncAdmin),
            ("/vnc/administrator", Self.vnc),
            ("/vncx", Self.root),
            ("/ssh", Self.ssh),
            ("/", Self.root),
            ("/anything/else", Self.root),
        ]
        for (uri, route) in cases {
            let plan = try decide(policy, uri: uri).get()
            #expect(plan.route == route, "\(uri)")
            #expect(plan.target == route.target, "\(uri)")
            #expect(plan.subprotocol == "binary")
        }
    }

    @Test("the query is ignored for routing")
    func queryIgnored() throws {
        let policy = try self.policy([Self.vnc, Self.vncAdmin])
        #expect(try decide(policy, uri: "/vnc?token=abc").get().route == Self.vnc)
        #expect(try decide(policy, uri: "/vnc/admin?path=/x&y=1").get().route == Self.vncAdmin)
        #expect(try decide(policy, uri: "/vnc?").get().route == Self.vnc)
        #expect(throws: HandshakeRejection.self) { try decide(policy, uri: "/vncx?x=/vnc").get() }
    }

    @Test("a request without Origin is allowed")
    func noOrigin() throws {
        let policy = try self.policy([Self.vnc])
        #expect(try decide(policy, uri: "/vnc").get().route == Self.vnc)
        #expect(try decide(policy, uri: "/vnc", host: nil).get().route == Self.vnc)
    }

    @Test("an Origin on the relay's own host name is allowed, whatever the port or scheme")
    func sameHost() throws {
        let policy = try self.policy([Self.vnc])
        for (origin, host) in [
            ("http://relay.example:8080", "relay.example:6080"),
            ("https://relay.example", "relay.example:6080"),
            ("http://RELAY.example", "relay.EXAMPLE"),
            ("http://relay.example:6080", "relay.example:6080"),
            ("http://[::1]:3000", "[::1]:6080"),
            ("http://127.0.0.1:9999", "127.0.0.1:6080"),
        ] {
            let result = decide(policy, uri: "/vnc", origin: origin, host: host)
            #expect(isAccepted(result), "\(origin) for \(host): \(result)")
        }
    }

    @Test("another Origin gets 403")
    func otherOrigin() throws {
        let policy = try self.policy([Self.vnc])
        let cases: [(String, String?)] = [
            ("https://evil.example", "relay.example:6080"),
            ("http://relay.example.evil.example", "relay.example:6080"),
            ("http://sub.relay.example", "relay.example:6080"),
            ("null", "relay.example:6080"),
            ("http://relay.example", nil),
            ("http://[::2]:6080", "[::1]:6080"),
        ]
        for (origin, host) in cases {
            guard case .failure(let rejection) = decide(policy, uri: "/vnc", origin: origin, host: host) else {
                Issue.record("\(origin) for \(host ?? "no host") should be refused")
                continue
            }
            #expect(rejection.status == .forbidden, "\(origin)")
        }
    }

    @Test("DNS rebinding: a page whose Host and Origin agree gets in only if the Host is one of the relay's names")
    func rebinding() throws {
        let policy = try self.policy([Self.vnc], serverNames: ["relay.example", "*.consoles.example"])
        for (origin, host) in [
            ("http://relay.example", "relay.example:6080"),
            ("https://a.consoles.example", "a.consoles.example"),
            ("https://b.a.consoles.example", "b.a.consoles.example"),
            ("http://localhost:8000", "localhost:6080"),
            ("http://vnc.localhost", "vnc.localhost"),
            ("http://10.1.2.3", "10.1.2.3:6080"),
            ("http://[fe80::1]", "[fe80::1]:6080"),
        ] {
            let result = decide(policy, uri: "/vnc", origin: origin, host: host)
            #expect(isAccepted(result), "\(origin) for \(host): \(result)")
        }
        for (origin, host) in [
            ("http://attacker.example", "attacker.example"),
            ("http://attacker.example:6080", "attacker.example:6080"),
            ("http://consoles.example", "consoles.example"),
            ("http://evilconsoles.example", "evilconsoles.example"),
            ("http://relay.example.attacker.example", "relay.example.attacker.example"),
        ] {
            guard case .failure(let rejection) = decide(policy, uri: "/vnc", origin: origin, host: host) else {
                Issue.record("\(origin) for \(host) should be refused")
                continue
            }
            #expect(rejection.status == .forbidden)
            #expect(rejection.message.contains("--server-name") && rejection.message.contains("--allow-origin"), "\(rejection.message)")
        }
        // Listing the origin lets the page in whatever its host.
        let listed = try self.policy([Self.vnc], allowed: ["http://attacker.example"], serverNames: [])
        #expect(isAccepted(decide(listed, uri: "/vnc", origin: "http://attacker.example", host: "attacker.example")))
    }

    @Test("--server-name takes host names and *.domain, nothing else")
    func serverNameValues() throws {
        #expect(try OriginPolicy.validateServerName("Relay.Example.com") == "relay.example.com")
        #expect(try OriginPolicy.validateServerName("*.example.com") == "*.example.com")
        for bad in ["", "https://relay.example", "relay.example:443", "*", "*.", "a..b", "-a.example", "a b", "a/b"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try OriginPolicy.validateServerName(bad) }
        }
    }

    @Test("no route wins over a bad Origin: 404, not 403")
    func routeBeforeOrigin() throws {
        let policy = try self.policy([Self.vnc])
        guard case .failure(let rejection) = decide(policy, uri: "/nothing", origin: "https://evil.example") else {
            Issue.record("should be refused")
            return
        }
        #expect(rejection.status == .notFound)
    }

    @Test("--allow-origin lets listed origins in, normalised for case and a trailing slash")
    func allowList() throws {
        let policy = try self.policy([Self.vnc], allowed: ["https://app.example", "http://localhost:3000/"])
        for origin in ["https://app.example", "HTTPS://App.Example", "https://app.example/", "http://localhost:3000"] {
            let result = decide(policy, uri: "/vnc", origin: origin)
            #expect(isAccepted(result), "\(origin): \(result)")
        }
        for origin in ["http://app.example", "https://app.example:8443", "http://localhost:3001", "https://evil.example"] {
            let result = decide(policy, uri: "/vnc", origin: origin)
            #expect(throws: HandshakeRejection.self, "\(origin)") { try result.get() }
        }
    }

    @Test("--allow-origin '*' lets any origin in")
    func allowAny() throws {
        let policy = try self.policy([Self.vnc], allowed: ["*"])
        for origin in ["https://evil.example", "null", "http://x:1"] {
            let result = decide(policy, uri: "/vnc", origin: origin)
            #expect(isAccepted(result), "\(origin): \(result)")
        }
    }

    @Test("the plan carries the handshake's subprotocol")
    func subprotocolPassedOn() throws {
        let policy = try self.policy([Self.ssh])
        var head = upgradeHead(uri: "/ssh")
        head.headers.remove(name: "Origin")
        let plan = try policy.decide(head: head, handshake: WebSocketHandshake(offeredSubprotocols: [], subprotocol: nil))
        #expect(plan == UpgradePlan(route: Self.ssh, target: .unix(path: "/run/ssh.sock"), subprotocol: nil))
    }
}

// MARK: - Helpers

private func isAccepted(_ result: Result<UpgradePlan, HandshakeRejection>) -> Bool {
    if case .success = result { return true }
    return false
}

private let validHeaders: [(String, String)] = [
    ("Host", "relay.example:6080"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]

private func upgradeHead(uri: String = "/vnc", headers: [(String, String)] = validHeaders) -> HTTPRequestHead {
    HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
}

@discardableResult
private func expectRejection(
    _ head: HTTPRequestHead,
    status: HTTPResponseStatus,
    sourceLocation: SourceLocation = #_sourceLocation
) -> HandshakeRejection? {
    guard case .rejected(let rejection) = UpgradeRequest(head) else {
        Issue.record("expected a \(status.code) rejection, got \(UpgradeRequest(head))", sourceLocation: sourceLocation)
        return nil
    }
    #expect(rejection.status == status, "\(rejection)", sourceLocation: sourceLocation)
    #expect(!rejection.message.isEmpty, sourceLocation: sourceLocation)
    #expect(!rejection.message.contains("\n"), sourceLocation: sourceLocation)
    return rejection
}
