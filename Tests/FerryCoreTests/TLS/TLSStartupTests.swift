import Foundation
import Testing

@testable import FerryCommandLine
@testable import FerryCore

extension TLSTests {
    /// Certificate problems found at start-up: each one a ConfigurationError naming the flag, the
    /// file and what is wrong with it.
    @Suite("Start-up")
    struct Startup {
        /// Parses one listener, `route` and `flags`, and builds the server, as the `ferry` executable
        /// does; returns the ConfigurationError, or nil if both steps succeed. ArgumentParser refusing
        /// the flags is an issue, not a ConfigurationError.
        static func startupError(route: String = "/=127.0.0.1:9", _ flags: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
            let arguments = ["--listen", "127.0.0.1:6080", "--route", route] + flags
            do {
                let (configuration, _) = try FerryFlags.configuration(arguments)
                _ = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
                return nil
            } catch let error as ConfigurationError {
                return error
            } catch {
                Issue.record("ArgumentParser refused \(arguments): \(FerryOptions.message(for: error))", sourceLocation: sourceLocation)
                return nil
            }
        }

        @Test("a missing certificate or key file")
        func missingFile() throws {
            let pki = try TestPKI.shared()
            let missing = "\(pki.directory)/no-such-file.pem"
            let certificate = try #require(Self.startupError(["--tls-cert", missing, "--tls-key", pki.localhost.keyPath]))
            #expect(certificate.flag == "--tls-cert")
            #expect(certificate.description.contains(missing))
            #expect(certificate.description.contains("file not found"), "\(certificate)")

            let key = try #require(Self.startupError(["--tls-cert", pki.localhost.certificatePath, "--tls-key", missing]))
            #expect(key.flag == "--tls-key")
            #expect(key.description.contains(missing))
            #expect(key.description.contains("file not found"), "\(key)")
        }

        @Test("a certificate file that is not PEM")
        func badCertificatePEM() throws {
            let pki = try TestPKI.shared()
            let error = try #require(Self.startupError(["--tls-cert", pki.garbagePath, "--tls-key", pki.localhost.keyPath]))
            #expect(error.flag == "--tls-cert")
            #expect(error.description.contains(pki.garbagePath))
            #expect(error.description.contains("not a PEM certificate"), "\(error)")
        }

        @Test("a key file that is not PEM")
        func badKeyPEM() throws {
            let pki = try TestPKI.shared()
            let error = try #require(Self.startupError(["--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.garbagePath]))
            #expect(error.flag == "--tls-key")
            #expect(error.description.contains(pki.garbagePath))
            #expect(error.description.contains("not a PEM private key"), "\(error)")
        }

        @Test("an encrypted key")
        func encryptedKey() throws {
            let pki = try TestPKI.shared()
            let error = try #require(Self.startupError(["--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.encryptedKeyPath]))
            #expect(error.flag == "--tls-key")
            #expect(error.description.contains(pki.encryptedKeyPath))
            #expect(error.description.contains("encrypted"), "\(error)")
        }

        @Test("a key that does not match the certificate")
        func mismatchedKey() throws {
            let pki = try TestPKI.shared()
            let error = try #require(Self.startupError(["--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.strayKeyPath]))
            #expect(error.flag == "--tls-key")
            #expect(error.description.contains(pki.strayKeyPath))
            #expect(error.description.contains(pki.localhost.certificatePath), "names the certificate too: \(error)")
            #expect(error.description.contains("does not match"), "\(error)")

            // The second pair is checked as well.
            let second = try #require(Self.startupError([
                "--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.localhost.keyPath,
                "--tls-cert", pki.other.certificatePath, "--tls-key", pki.localhost.keyPath,
            ]))
            #expect(second.description.contains(pki.other.certificatePath), "\(second)")
            #expect(second.description.contains("does not match"), "\(second)")
        }

        @Test("LoadedCertificatePair.load names the file and the problem")
        func loadDirectly() throws {
            let pki = try TestPKI.shared()
            func loadError(_ certificate: String, _ key: String) -> ConfigurationError? {
                do {
                    _ = try LoadedCertificatePair.load(.init(certificatePath: certificate, keyPath: key))
                    return nil
                } catch {
                    return error
                }
            }
            let cases: [(certificate: String, key: String, flag: String, file: String, problem: String)] = [
                (pki.garbagePath, pki.localhost.keyPath, "--tls-cert", pki.garbagePath, "not a PEM certificate"),
                (pki.localhost.certificatePath, pki.encryptedKeyPath, "--tls-key", pki.encryptedKeyPath, "encrypted"),
                (pki.localhost.certificatePath, pki.strayKeyPath, "--tls-key", pki.strayKeyPath, "does not match"),
                (pki.localhost.keyPath, pki.localhost.keyPath, "--tls-cert", pki.localhost.keyPath, "certificate"),
            ]
            for item in cases {
                let error = try #require(loadError(item.certificate, item.key), "\(item)")
                #expect(error.flag == item.flag, "\(error)")
                #expect(error.value == item.file, "\(error)")
                #expect(error.description.contains(item.problem), "\(error)")
            }
            let loaded = try LoadedCertificatePair.load(pki.localhost.listenerPair)
            #expect(loaded.names == ["localhost"])
            #expect(!loaded.isExpired)
        }

        @Test("an expired certificate still starts (with a warning)")
        func expiredCertificateStarts() async throws {
            let pki = try TestPKI.shared()
            let loaded = try LoadedCertificatePair.load(pki.expired.listenerPair)
            #expect(loaded.isExpired)
            #expect(Self.startupError(["--tls-cert", pki.expired.certificatePath, "--tls-key", pki.expired.keyPath]) == nil)

            // It is served: a client that does not check dates would get it.
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([pki.expired])) { relay in
                let verifying = try TLSClient.configuration(trusting: pki.caPath)
                await #expect(throws: TLSHandshakeFailed.self, "a verifying client refuses an expired certificate") {
                    let session = try await TLSClient.connect(to: relay.address, configuration: verifying, serverHostname: "localhost")
                    await session.shutdown()
                }
                let lenient = try TLSClient.configuration(trusting: pki.caPath, verification: .none)
                let session = try await TLSClient.upgrade(relay, configuration: lenient)
                #expect(session.peerSerial == pki.expired.serial)
                await session.shutdown()
            }
        }

        @Test("--tls-client-ca and --backend-ca problems name the file")
        func caFiles() throws {
            let pki = try TestPKI.shared()
            let clientCA = try #require(Self.startupError([
                "--tls-cert", pki.localhost.certificatePath, "--tls-key", pki.localhost.keyPath,
                "--tls-client-ca", pki.garbagePath,
            ]))
            #expect(clientCA.flag == "--tls-client-ca")
            #expect(clientCA.description.contains(pki.garbagePath), "\(clientCA)")

            let backendCA = try #require(Self.startupError(route: "/=tls://localhost:9", ["--backend-ca", pki.garbagePath]))
            #expect(backendCA.flag == "--backend-ca")
            #expect(backendCA.description.contains(pki.garbagePath), "\(backendCA)")

            let missingBackendCA = try #require(Self.startupError(route: "/=tls://localhost:9", ["--backend-ca", "\(pki.directory)/absent-ca.pem"]))
            #expect(missingBackendCA.flag == "--backend-ca")
            #expect(missingBackendCA.description.contains("file not found"), "\(missingBackendCA)")
        }
    }
}
