import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// `wss://` against the in-process relay serving the test PKI's localhost certificate (CN
    /// localhost; DNS localhost and IP 127.0.0.1), through the `ferry` executable in stdio mode.
    @Suite(
        "wss:// (the ferry executable)",
        .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")),
        .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests")
    )
    struct TLSTests {
        /// Echoes a line through `ferry connect ARGUMENTS` and ends the session; the exit status.
        static func echoLine(_ arguments: [String]) async throws -> (status: Int32?, errors: String) {
            let connect = try StdioConnect(arguments)
            let line = Array("over TLS\n".utf8)
            try await connect.send(line)
            let echoed = try? await connect.receive(count: line.count, timeout: .seconds(10))
            try? connect.closeInput()
            let status = await connect.waitForExit()
            if status == 0 { #expect(echoed == line) }
            return (status, connect.errorOutput)
        }

        static func withRelay<T: Sendable>(_ adjust: (inout ListenerTLSOptions) -> Void = { _ in }, _ body: (TestPKI, RunningRelay) async throws -> T) async throws -> T {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            return try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.localhost], adjust)) { relay in
                try await body(pki, relay)
            }
        }

        @Test("trusted with --ca: the session works (checked against the IP address and, by name, localhost)")
        func trustedWithCA() async throws {
            try await Self.withRelay { pki, relay in
                let port = relay.address.port!
                let byAddress = try await Self.echoLine(["wss://127.0.0.1:\(port)/", "--ca", pki.caPath])
                #expect(byAddress.status == 0, "\(byAddress.errors)")
                let byName = try await Self.echoLine(["wss://localhost:\(port)/", "--ca", pki.caPath])
                #expect(byName.status == 0, "\(byName.errors)")
            }
        }

        @Test("without --ca the certificate is refused: status 4 and a message that says what to do")
        func untrusted() async throws {
            try await Self.withRelay { _, relay in
                let result = try await Self.echoLine(["wss://127.0.0.1:\(relay.address.port!)/"])
                #expect(result.status == ConnectExitStatus.tlsFailed.rawValue)
                #expect(result.errors.contains("ferry connect: TLS handshake with 127.0.0.1:\(relay.address.port!) failed: the relay's certificate could not be verified"), "\(result.errors)")
                #expect(result.errors.contains("--ca FILE"))
            }
        }

        @Test("--insecure skips verification, and warns")
        func insecure() async throws {
            try await Self.withRelay { _, relay in
                let result = try await Self.echoLine(["wss://127.0.0.1:\(relay.address.port!)/", "--insecure", "--log-level", "error"])
                #expect(result.status == 0, "\(result.errors)")
                #expect(result.errors.contains("ferry connect: warning: --insecure: the relay's certificate is not verified"), "whatever the log level")
            }
        }

        @Test("--server-name: SNI and the name checked are that name, not the URL's host")
        func serverName() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            // The certificate names other.test and *.wild.test only (no IP address).
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.other])) { relay in
                let url = "wss://127.0.0.1:\(relay.address.port!)/"
                let named = try await Self.echoLine([url, "--ca", pki.caPath, "--server-name", "other.test"])
                #expect(named.status == 0, "\(named.errors)")
                let wildcard = try await Self.echoLine([url, "--ca", pki.caPath, "--server-name", "a.wild.test"])
                #expect(wildcard.status == 0, "\(wildcard.errors)")
                let unnamed = try await Self.echoLine([url, "--ca", pki.caPath])
                #expect(unnamed.status == ConnectExitStatus.tlsFailed.rawValue, "the address is not in the certificate: \(unnamed.errors)")
                let wrong = try await Self.echoLine([url, "--ca", pki.caPath, "--server-name", "elsewhere.test"])
                #expect(wrong.status == ConnectExitStatus.tlsFailed.rawValue, "\(wrong.errors)")
            }
        }

        @Test("mutual TLS: a relay with --tls-client-ca admits --client-cert, and refuses a client without one")
        func mutualTLS() async throws {
            try await Self.withRelay({ options in
                options.clientCAPath = try? TestPKI.shared().caPath
                options.clientAuthentication = .require
            }) { pki, relay in
                let port = relay.address.port!
                let withCertificate = try await Self.echoLine(["wss://localhost:\(port)/", "--ca", pki.caPath, "--client-cert", pki.alice.certificatePath, "--client-key", pki.alice.keyPath])
                #expect(withCertificate.status == 0, "\(withCertificate.errors)")
                let without = try await Self.echoLine(["wss://localhost:\(port)/", "--ca", pki.caPath])
                #expect(without.status != 0, "no client certificate, no session")
                #expect(without.errors.contains("ferry connect:"), "\(without.errors)")
            }
        }

        @Test("a wss:// URL to a plain port is not downgraded: status 4, saying the port does not speak TLS")
        func noDowngrade() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let result = try await Self.echoLine(["wss://127.0.0.1:\(relay.address.port!)/"])
                #expect(result.status == ConnectExitStatus.tlsFailed.rawValue)
                #expect(result.errors.contains("does not speak TLS on this port"), "\(result.errors)")
                #expect(backend.accepted == 0)
            }
        }
    }
}
