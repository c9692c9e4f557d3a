import Foundation
import NIOSSL
import Testing

@testable import FerryCommandLine
@testable import FerryCore

extension TLSTests {
    /// Client certificates: --tls-client-ca with --tls-client-auth require/optional, and routes
    /// limited to certain names with `client-cn=NAME`.
    @Suite("Client certificates")
    struct ClientAuth {
        static func options(_ pki: TestPKI, _ mode: ListenerTLSOptions.ClientAuthentication) -> ListenerTLSOptions {
            TLSRelay.options([pki.localhost]) {
                $0.clientCAPath = pki.caPath
                $0.clientAuthentication = mode
            }
        }

        @Test("require: no certificate or one from another CA fails the handshake; alice gets in")
        func required() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: Self.options(pki, .require)) { relay in
                let (anonymous, _) = try await TLSClient.attemptUpgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(anonymous.failedInTLS, "\(anonymous)")

                let foreign = try TLSClient.configuration(trusting: pki.caPath, certificate: pki.foreignAlice)
                let (stranger, _) = try await TLSClient.attemptUpgrade(relay, configuration: foreign)
                #expect(stranger.failedInTLS, "\(stranger)")

                // The same refusals with TLS 1.2, where the client sees them in the handshake itself.
                let anonymous12 = try TLSClient.configuration(trusting: pki.caPath, maximumVersion: .tlsv12)
                await #expect(throws: TLSHandshakeFailed.self) {
                    let session = try await TLSClient.connect(to: relay.address, configuration: anonymous12, serverHostname: "localhost")
                    await session.shutdown()
                }
                let foreign12 = try TLSClient.configuration(trusting: pki.caPath, certificate: pki.foreignAlice, maximumVersion: .tlsv12)
                await #expect(throws: TLSHandshakeFailed.self) {
                    let session = try await TLSClient.connect(to: relay.address, configuration: foreign12, serverHostname: "localhost")
                    await session.shutdown()
                }
                #expect(backend.accepted == 0)

                let alice = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice))
                #expect(try await TLSEcho.roundTrip(alice.client, "alice here") == "alice here")
                await alice.shutdown()
            }
        }

        @Test("optional: a client without a certificate gets in; one from another CA does not")
        func optional() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: Self.options(pki, .optional)) { relay in
                let anonymous = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(try await TLSEcho.roundTrip(anonymous.client, "no certificate") == "no certificate")
                await anonymous.shutdown()

                let alice = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice))
                #expect(try await TLSEcho.roundTrip(alice.client, "with certificate") == "with certificate")
                await alice.shutdown()

                // A certificate that is presented must be valid.
                let foreign = try TLSClient.configuration(trusting: pki.caPath, certificate: pki.foreignAlice)
                let (stranger, _) = try await TLSClient.attemptUpgrade(relay, configuration: foreign)
                #expect(stranger.failedInTLS, "\(stranger)")
            }
        }

        @Test("client-cn=alice: alice 101, mallory 403, no certificate 403, a header proves nothing")
        func routeByClientName() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let routes = [
                try Route.parse("/alice=\(backend.target),client-cn=alice"),
                Route(path: "/", target: backend.target),
            ]
            try await TLSRelay.with(routes: routes, tls: Self.options(pki, .optional)) { relay in
                let aliceConfiguration = try TLSClient.configuration(trusting: pki.caPath, certificate: pki.alice)
                let alice = try await TLSClient.upgrade(relay, configuration: aliceConfiguration, path: "/alice")
                #expect(try await TLSEcho.roundTrip(alice.client, "for alice") == "for alice")
                await alice.shutdown()

                let mallory = try TLSClient.configuration(trusting: pki.caPath, certificate: pki.mallory)
                let (malloryAttempt, mallorySession) = try await TLSClient.attemptUpgrade(relay, configuration: mallory, path: "/alice")
                #expect(malloryAttempt.status == 403, "\(malloryAttempt)")
                await mallorySession?.shutdown()
                // mallory may use the open route.
                let malloryOpen = try await TLSClient.upgrade(relay, configuration: mallory, path: "/")
                await malloryOpen.shutdown()

                let anonymous = try TLSClient.configuration(trusting: pki.caPath)
                let (anonymousAttempt, anonymousSession) = try await TLSClient.attemptUpgrade(relay, configuration: anonymous, path: "/alice/sub")
                #expect(anonymousAttempt.status == 403, "\(anonymousAttempt)")
                await anonymousSession?.shutdown()

                // Headers a TLS-terminating proxy might set carry no weight.
                let forged = [("X-SSL-Client-CN", "alice"), ("X-Client-Cert-CN", "alice"), ("X-Forwarded-Client-Cert", "Subject=\"CN=alice\"")]
                let (forgedAttempt, forgedSession) = try await TLSClient.attemptUpgrade(relay, configuration: anonymous, path: "/alice", headers: forged)
                #expect(forgedAttempt.status == 403, "\(forgedAttempt)")
                await forgedSession?.shutdown()
                let (malloryForged, malloryForgedSession) = try await TLSClient.attemptUpgrade(relay, configuration: mallory, path: "/alice", headers: forged)
                #expect(malloryForged.status == 403, "\(malloryForged)")
                await malloryForgedSession?.shutdown()

                // Nor over plain ws:// on the same port.
                let plain = try await WSTestClient.connect(to: relay, path: "/alice", headers: forged)
                #expect(plain.response.status == 403, "\(plain.response)")
                await plain.shutdown()

                // Only alice's sessions and mallory's on the open route reached the backend.
                #expect(await backend.waitForAccepted(2))
                #expect(backend.accepted == 2)
            }
        }

        @Test("client-cn without --tls-client-ca is a configuration error")
        func clientNameNeedsClientCA() throws {
            let pki = try TestPKI.shared()
            let flags = [
                "--listen", "127.0.0.1:6080",  // parsed only, never bound
                "--route", "/vnc=127.0.0.1:5900,client-cn=alice",
                "--tls-cert", pki.localhost.certificatePath,
                "--tls-key", pki.localhost.keyPath,
            ]
            #expect(FerryFlags.problem(flags) != nil, "a ConfigurationError")
            let (configuration, _) = try FerryFlags.configuration(flags + ["--tls-client-ca", pki.caPath])
            #expect(configuration.routes.routes.first?.options.clientNames == ["alice"])
        }
    }
}
