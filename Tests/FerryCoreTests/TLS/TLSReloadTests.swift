import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension TLSTests {
    /// Certificates replaced while the relay runs: by a file change, by `reload()` (what SIGHUP
    /// calls), by a real SIGHUP to the `ferry` executable, and broken files that must not be taken.
    @Suite("Reload")
    struct Reload {
        /// Copies `pair` to `live.pem` / `live.key` in `directory` (replacing what is there).
        static func install(_ pair: TestCertificatePair, in directory: String) throws -> TestCertificatePair {
            let live = TestCertificatePair(certificatePath: "\(directory)/live.pem", keyPath: "\(directory)/live.key", serial: pair.serial)
            try TLSFiles.copy(pair.certificatePath, to: live.certificatePath)
            try TLSFiles.copy(pair.keyPath, to: live.keyPath)
            return live
        }

        @Test("reloadIfChanged and reload swap the certificate; open sessions keep going")
        func reloadSwapsCertificate() async throws {
            let pki = try TestPKI.shared()
            let directory = try TLSFiles.makeDirectory("tls-reload")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let live = try Self.install(pki.localhost, in: directory)
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([live])) { relay in
                let provider = try #require(relay.server.environment.tls)
                let verifying = try TLSClient.configuration(trusting: pki.caPath)
                let first = try await TLSClient.upgrade(relay, configuration: verifying)
                #expect(first.peerSerial == TestPKI.localhostSerial)
                #expect(try await TLSEcho.roundTrip(first.client, "before") == "before")

                // Nothing changed: nothing is reloaded.
                provider.reloadIfChanged()
                #expect(provider.leafCertificates.first?.serialNumber == TestPKI.localhostSerial)

                // New files (written beside, renamed over): the poll's check sees the change.
                _ = try Self.install(pki.localhostRenewed, in: directory)
                provider.reloadIfChanged()
                #expect(provider.leafCertificates.first?.serialNumber == TestPKI.renewedSerial)
                #expect(try await TLSEcho.roundTrip(first.client, "old session after file change") == "old session after file change")
                let second = try await TLSClient.upgrade(relay, configuration: verifying)
                #expect(second.peerSerial == TestPKI.renewedSerial)
                #expect(try await TLSEcho.roundTrip(second.client, "new certificate") == "new certificate")

                // reload(), as on SIGHUP.
                _ = try Self.install(pki.localhostRenewedAgain, in: directory)
                #expect(provider.reload())
                #expect(provider.leafCertificates.first?.serialNumber == TestPKI.renewedAgainSerial)
                let third = try await TLSClient.upgrade(relay, configuration: verifying)
                #expect(third.peerSerial == TestPKI.renewedAgainSerial)
                #expect(try await TLSEcho.roundTrip(third.client, "third") == "third")
                #expect(try await TLSEcho.roundTrip(first.client, "first still here") == "first still here")
                #expect(try await TLSEcho.roundTrip(second.client, "second still here") == "second still here")

                for session in [first, second, third] {
                    #expect(try await session.client.close(code: 1000).code == 1000)
                    await session.shutdown()
                }
            }
        }

        @Test("a broken reload (bad PEM, a key that does not match) keeps the certificate in use")
        func brokenReloadKeepsCertificate() async throws {
            let pki = try TestPKI.shared()
            let directory = try TLSFiles.makeDirectory("tls-broken-reload")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let live = try Self.install(pki.localhost, in: directory)
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await TLSRelay.with(routes: [Route(path: "/", target: backend.target)], tls: TLSRelay.options([live])) { relay in
                let provider = try #require(relay.server.environment.tls)
                let verifying = try TLSClient.configuration(trusting: pki.caPath)
                let session = try await TLSClient.upgrade(relay, configuration: verifying)

                // Garbage in the certificate file.
                try TLSFiles.replace(live.certificatePath, with: Data("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n".utf8))
                provider.reloadIfChanged()
                #expect(provider.leafCertificates.first?.serialNumber == TestPKI.localhostSerial)
                #expect(!provider.reload())
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath) == TestPKI.localhostSerial)

                // A new certificate whose key has not been replaced yet.
                try TLSFiles.copy(pki.localhostRenewed.certificatePath, to: live.certificatePath)
                provider.reloadIfChanged()
                #expect(provider.leafCertificates.first?.serialNumber == TestPKI.localhostSerial)
                #expect(!provider.reload())
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath) == TestPKI.localhostSerial)

                // A key that needs a password.
                try TLSFiles.copy(pki.localhost.certificatePath, to: live.certificatePath)
                try TLSFiles.copy(pki.encryptedKeyPath, to: live.keyPath)
                #expect(!provider.reload())

                // Still fully working with the old certificate, old session and new ones.
                #expect(try await TLSEcho.roundTrip(session.client, "old session") == "old session")
                let fresh = try await TLSClient.upgrade(relay, configuration: verifying)
                #expect(fresh.peerSerial == TestPKI.localhostSerial)
                #expect(try await TLSEcho.roundTrip(fresh.client, "new session") == "new session")

                // Once the files are right again, the next reload takes them.
                _ = try Self.install(pki.localhostRenewed, in: directory)
                #expect(provider.reload())
                #expect(try await TLSClient.servedSerial(at: relay.address, caPath: pki.caPath) == TestPKI.renewedSerial)
                await session.shutdown()
                await fresh.shutdown()
            }
        }

        @Test(
            "SIGHUP to the ferry executable reloads the certificate",
            .enabled(if: FerryExecutable.path != nil, "the ferry executable is not next to the test bundle; `swift build` builds it"),
            .timeLimit(.minutes(1))
        )
        func sighupReloadsFerryExecutable() async throws {
            let pki = try TestPKI.shared()
            let executable = try #require(FerryExecutable.path)
            let directory = try TLSFiles.makeDirectory("tls-sighup")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let certificatePath = "\(directory)/live.pem"
            let keyPath = "\(directory)/live.key"
            // Fixed sizes, so the files can be rewritten without their size (or inode, or mtime)
            // changing: then only SIGHUP, not the relay's 2-second poll, can notice the new pair.
            try PaddedFile.write(certificatePath, contents: try TLSFiles.read(pki.localhost.certificatePath), size: PaddedFile.certificateSize)
            try PaddedFile.write(keyPath, contents: try TLSFiles.read(pki.localhost.keyPath), size: PaddedFile.keySize)

            // --listen takes no port 0: use one that was free a moment ago.
            let port = try await FreePort.on()
            // `trap '' HUP` before exec: a SIGHUP that arrives before Ferry listens for it is ignored
            // instead of killing the process (the test sends it again until it has an effect).
            let ferry = try ChildProcess(
                executable: "/bin/sh",
                arguments: [
                    "-c", "trap '' HUP; exec \"$0\" \"$@\"", executable,
                    "--listen", "127.0.0.1:\(port)", "--route", "/=127.0.0.1:9", "--tls-cert", certificatePath, "--tls-key", keyPath,
                ],
                logPath: "\(directory)/ferry.log"
            )
            do {
                let listening = await ferry.waitForOutput(timeout: .seconds(10)) { FerryBinary.listeningPort(in: $0) }
                try #require(listening == port, "ferry did not start listening on \(port):\n\(ferry.output)")
                let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
                #expect(try await TLSClient.servedSerial(at: address, caPath: pki.caPath) == TestPKI.localhostSerial)

                // Swap in the renewed pair, invisibly to the poll.
                let stamps = [FileStamp(certificatePath), FileStamp(keyPath)]
                try PaddedFile.rewriteKeepingStamp(certificatePath, contents: try TLSFiles.read(pki.localhostRenewed.certificatePath))
                try PaddedFile.rewriteKeepingStamp(keyPath, contents: try TLSFiles.read(pki.localhostRenewed.keyPath))
                #expect([FileStamp(certificatePath), FileStamp(keyPath)] == stamps)

                let reloaded = try await Self.hangUp(ferry, until: { try await TLSClient.servedSerial(at: address, caPath: pki.caPath) == TestPKI.renewedSerial })
                #expect(reloaded, "no new certificate after SIGHUP:\n\(ferry.output)")
                #expect(ferry.output.contains("TLS certificates reloaded"))

                // A broken file on SIGHUP: logged, and the renewed certificate stays.
                try PaddedFile.rewriteKeepingStamp(certificatePath, contents: Data("garbage, not PEM\n".utf8))
                let failuresBefore = ferry.output.components(separatedBy: "reload failed").count
                let logged = try await Self.hangUp(ferry, until: { ferry.output.components(separatedBy: "reload failed").count > failuresBefore })
                #expect(logged, "no reload failure logged:\n\(ferry.output)")
                #expect(try await TLSClient.servedSerial(at: address, caPath: pki.caPath) == TestPKI.renewedSerial)
                #expect(ferry.process.isRunning)
            } catch {
                await ferry.stop()
                throw error
            }
            await ferry.stop()
        }

        /// Sends SIGHUP every 250 ms (for up to 10 s) until `done` holds.
        static func hangUp(_ ferry: ChildProcess, until done: () async throws -> Bool) async throws -> Bool {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            while clock.now < deadline && ferry.process.isRunning {
                kill(ferry.pid, SIGHUP)
                try await Task.sleep(for: .milliseconds(250))
                if try await done() { return true }
            }
            return false
        }
    }
}

/// Files padded with comment lines (which PEM readers skip) to a fixed size.
enum PaddedFile {
    static let certificateSize = 4096
    static let keySize = 1024

    static func padded(_ contents: Data, to size: Int) throws -> Data {
        let fill = size - contents.count
        guard fill >= 0 else { throw POSIXFailure(call: "pad to \(size) bytes (have \(contents.count))", code: EFBIG) }
        var padding = ""
        var left = fill
        while left > 0 {
            let line = min(left, 64)
            padding += String(repeating: "#", count: line - 1) + "\n"
            left -= line
        }
        return Data(padding.utf8) + contents
    }

    static func write(_ path: String, contents: Data, size: Int) throws {
        try self.padded(contents, to: size).write(to: URL(fileURLWithPath: path))
    }

    /// Overwrites the file in place with `contents` padded to its current size, then puts its
    /// access and modification times back: size, inode and mtime stay as they were.
    static func rewriteKeepingStamp(_ path: String, contents: Data) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw POSIXFailure(call: "stat \(path)", code: errno) }
        let data = try self.padded(contents, to: Int(info.st_size))
        guard let handle = FileHandle(forWritingAtPath: path) else { throw POSIXFailure(call: "open \(path)", code: errno) }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
        try handle.close()
        #if canImport(Darwin)
        var times = [info.st_atimespec, info.st_mtimespec]
        #else
        var times = [info.st_atim, info.st_mtim]
        #endif
        guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw POSIXFailure(call: "utimensat \(path)", code: errno) }
    }
}
