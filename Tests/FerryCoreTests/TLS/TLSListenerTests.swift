import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import FerryCommandLine
@testable import FerryCore

extension TLSTests {
    /// wss:// on the listeners: clients of two TLS stacks, ws:// beside wss:// on one port,
    /// --tls-only, SNI and --tls-min-version.
    @Suite("Listener")
    struct Listener {
        @Test("wss:// upgrade and echo with a NIOSSL client")
        func wssEchoWithNIOSSLClient() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.localhost])) { relay in
                let session = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(session.peerSerial == TestPKI.localhostSerial)
                #expect(try await TLSEcho.roundTrip(session.client, "hello over wss") == "hello over wss")
                let close = try await session.client.close(code: 1000)
                #expect(close.code == 1000)
                await session.shutdown()
            }
        }

        @Test("wss:// with Python's ssl and websockets", .enabled(if: OutsideTools.python("websockets"), OutsideTools.pipHint("websockets")))
        func wssEchoWithPythonWebsockets() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let script = Repository.tests.appendingPathComponent("Interop/websockets_tls_client.py").path
            let logDirectory = try TLSFiles.makeDirectory("python-tls")
            defer { try? FileManager.default.removeItem(atPath: logDirectory) }
            try await TLSRelay.with(routes: [Route(path: "/echo", target: backend.target)], tls: TLSRelay.options([pki.localhost])) { relay in
                let port = relay.address.port!
                let python = try ChildProcess(
                    executable: "/usr/bin/env",
                    arguments: ["python3", script, pki.caPath, "wss://localhost:\(port)/echo", "wss://127.0.0.1:\(port)/echo"],
                    logPath: "\(logDirectory)/python.log"
                )
                let status = await python.waitForExit(timeout: .seconds(20))
                if status == nil { await python.stop(grace: .seconds(1)) }
                let log = python.output
                #expect(status == 0, "python ssl + websockets client failed (is `pip install websockets` done?):\n\(log)")
                #expect(log.contains("PASS wss://localhost:\(port)/echo"), "\(log)")
                #expect(log.contains("PASS wss://127.0.0.1:\(port)/echo"), "\(log)")
                #expect(!log.contains("FAIL"), "\(log)")
            }
        }

        @Test("ws:// and wss:// on the same port")
        func plainAndTLSOnOnePort() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.localhost])) { relay in
                let plain = try await WSTestClient.upgrade(relay)
                let secure = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(try await TLSEcho.roundTrip(plain, "plain text bytes") == "plain text bytes")
                #expect(try await TLSEcho.roundTrip(secure.client, "encrypted bytes") == "encrypted bytes")
                #expect(try await TLSEcho.roundTrip(plain, "plain again") == "plain again")
                await plain.shutdown()
                await secure.shutdown()
            }
        }

        @Test("--tls-only answers plaintext with 400 naming wss://; TLS still works")
        func tlsOnlyRefusesPlaintext() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let options = TLSRelay.options([pki.localhost]) { $0.tlsOnly = true }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: options) { relay in
                let plain = try await WSTestClient.connect(to: relay)
                #expect(plain.response.status == 400)
                #expect(plain.response.body.contains("wss://"), "\(plain.response)")
                _ = try await plain.waitForDisconnect(timeout: .seconds(5))
                #expect(backend.accepted == 0)

                let secure = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(try await TLSEcho.roundTrip(secure.client, "still served") == "still served")
                await secure.shutdown()
            }
        }

        @Test("SNI picks the certificate whose names match; the first one otherwise")
        func sniSelectsCertificate() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let options = TLSRelay.options([pki.localhost, pki.other])
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: options) { relay in
                // Full verification: the client itself checks the name against the certificate.
                let verifying = try TLSClient.configuration(trusting: pki.caPath)
                let other = try await TLSClient.connect(to: relay.address, configuration: verifying, serverHostname: "other.test")
                #expect(other.peerSerial == TestPKI.otherSerial)
                #expect(Set(other.peerDNSNames) == ["other.test", "*.wild.test"])
                await other.shutdown()

                let wild = try await TLSClient.connect(to: relay.address, configuration: verifying, serverHostname: "x.wild.test")
                #expect(wild.peerSerial == TestPKI.otherSerial)
                await wild.shutdown()

                let local = try await TLSClient.connect(to: relay.address, configuration: verifying, serverHostname: "localhost")
                #expect(local.peerSerial == TestPKI.localhostSerial)
                #expect(local.peerDNSNames == ["localhost"])
                await local.shutdown()

                // A name no certificate has, and no SNI at all: the first pair.
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath, serverHostname: "unknown.test") == TestPKI.localhostSerial)
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath, serverHostname: nil) == TestPKI.localhostSerial)
                // Only one label matches a wildcard.
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath, serverHostname: "a.b.wild.test") == TestPKI.localhostSerial)

                // The certificate chosen by SNI carries a whole WebSocket session.
                let session = try await TLSClient.upgrade(relay, configuration: verifying, serverHostname: "other.test")
                #expect(session.peerSerial == TestPKI.otherSerial)
                #expect(try await TLSEcho.roundTrip(session.client, "via other.test") == "via other.test")
                await session.shutdown()
            }
        }

        @Test("--tls-min-version 1.3 refuses a TLS 1.2 client")
        func minimumVersion13() async throws {
            let pki = try TestPKI.shared()
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let tls12Only = try TLSClient.configuration(trusting: pki.caPath, maximumVersion: .tlsv12)

            let strict = TLSRelay.options([pki.localhost]) { $0.minimumVersion = .tls13 }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: strict) { relay in
                await #expect(throws: TLSHandshakeFailed.self) {
                    let session = try await TLSClient.connect(to: relay.address, configuration: tls12Only, serverHostname: "localhost")
                    await session.shutdown()
                }
                let modern = try await TLSClient.upgrade(relay, configuration: try TLSClient.configuration(trusting: pki.caPath))
                #expect(modern.tlsVersion == .tlsv13)
                #expect(try await TLSEcho.roundTrip(modern.client, "tls 1.3") == "tls 1.3")
                await modern.shutdown()
            }

            // The default minimum (1.2) takes the same client.
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.localhost])) { relay in
                let session = try await TLSClient.upgrade(relay, configuration: tls12Only)
                #expect(session.tlsVersion == .tlsv12)
                #expect(try await TLSEcho.roundTrip(session.client, "tls 1.2") == "tls 1.2")
                await session.shutdown()
            }
        }

        @Test("--tls-min-version and --tls-only reach the listener options from the flags")
        func flagsReachOptions() throws {
            let pki = try TestPKI.shared()
            let (configuration, _) = try FerryFlags.configuration([
                "--listen", "127.0.0.1:6080",  // parsed only, never bound
                "--route", "/=127.0.0.1:9",
                "--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.localhost.keyPath,
                "--tls-cert", pki.other.certificatePath, "--tls-key", pki.other.keyPath,
                "--tls-only",
                "--tls-min-version", "1.3",
            ])
            let tls = try #require(configuration.tls)
            #expect(tls.tlsOnly)
            #expect(tls.minimumVersion == .tls13)
            #expect(tls.pairs == [pki.localhost.listenerPair, pki.other.listenerPair])
        }
    }
}
