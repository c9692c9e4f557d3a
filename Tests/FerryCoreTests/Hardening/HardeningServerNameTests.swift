// Defect 5, second half: the relay's own public names (`--server-name`, `OriginPolicy.serverNames`,
// a `*.` wildcard allowed) are accepted as Host and Origin, while other names stay refused. Kept in
// its own file because it uses `OriginPolicy(allowed:onlyListed:serverNames:)`.

import NIOCore
import Testing

@testable import FerryCore

extension HardeningTests {
    @Suite("Server names (DNS rebinding)")
    struct ServerNames {
        static func status(_ relay: RunningRelay, host: String, origin: String) async throws -> HTTPTestResponse {
            try await HostAndOrigin.rawUpgrade(relay, headers: [("Host", host), ("Origin", origin)])
        }

        struct Case: Sendable, CustomTestStringConvertible {
            var serverNames: [String]
            var host: String
            var origin: String
            var testDescription: String { "serverNames \(self.serverNames), Host \(self.host)" }
        }

        /// Defect 5: a configured server name gets in, with and without a wildcard; a name outside
        /// them is still refused.
        @Test(
            "serverNames relay.example.com: its Host and Origin get 101; *.example.com lets a.example.com in; attacker.example stays 403",
            arguments: [
                Case(serverNames: ["relay.example.com"], host: "relay.example.com", origin: "https://relay.example.com"),
                Case(serverNames: ["*.example.com"], host: "a.example.com", origin: "https://a.example.com"),
            ]
        )
        func serverNameAccepted(_ named: Case) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let policy = OriginPolicy(allowed: [], onlyListed: false, serverNames: named.serverNames)
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], originPolicy: policy) { relay in
                let own = try await Self.status(relay, host: named.host, origin: named.origin)
                #expect(own.status == 101, "\(named.serverNames) \(named.host): \(own)")
                let other = try await Self.status(relay, host: "attacker.example", origin: "http://attacker.example")
                #expect(other.status == 403, "\(named.serverNames) attacker.example: \(other)")
            }
        }
    }
}
