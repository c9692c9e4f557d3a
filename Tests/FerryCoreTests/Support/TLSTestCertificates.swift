// Certificates for the TLS and websockify tests, made with the `openssl` command once per test run
// (the first test that asks builds them all; later tests reuse the files).

import Foundation
import NIOSSL

@testable import FerryCore

/// A certificate file and its private key file.
struct TestCertificatePair: Sendable {
    var certificatePath: String
    var keyPath: String
    /// The serial number the certificate was issued with (each one in the set is different).
    var serial: [UInt8]

    var listenerPair: ListenerTLSOptions.CertificatePair { .init(certificatePath: self.certificatePath, keyPath: self.keyPath) }
}

/// Everything the TLS tests need, in one temporary folder.
struct TestPKI: Sendable {
    /// The folder every file is in.
    var directory: String
    /// The test CA (EC P-256) that signs the certificates below.
    var caPath: String
    /// CN localhost; DNS localhost and IP 127.0.0.1.
    var localhost: TestCertificatePair
    /// DNS other.test and *.wild.test (for SNI, and as a backend certificate naming another host).
    var other: TestCertificatePair
    /// Two more localhost certificates with new serials, to swap in on reload.
    var localhostRenewed: TestCertificatePair
    var localhostRenewedAgain: TestCertificatePair
    /// Client certificates signed by the test CA.
    var alice: TestCertificatePair
    var mallory: TestCertificatePair
    /// A client certificate with CN alice from a different CA.
    var foreignAlice: TestCertificatePair
    /// The other CA (signs `foreignAlice`).
    var foreignCAPath: String
    /// A localhost certificate valid only from 2020-01-01 to 2020-01-02.
    var expired: TestCertificatePair
    /// A key that belongs to none of the certificates.
    var strayKeyPath: String
    /// The localhost key, encrypted with AES-256 (password `x`).
    var encryptedKeyPath: String
    /// A file that is not PEM at all.
    var garbagePath: String

    static let localhostSerial: [UInt8] = [0x10, 0x01]
    static let otherSerial: [UInt8] = [0x10, 0x02]
    static let renewedSerial: [UInt8] = [0x20, 0x01]
    static let renewedAgainSerial: [UInt8] = [0x20, 0x02]

    /// The set, built on first use.
    static func shared() throws -> TestPKI {
        try Self.cached.get()
    }

    private static let cached: Result<TestPKI, OpenSSLError> = Result { () throws(OpenSSLError) in try TestPKI.build() }

    /// Where the files are; removed when the test process exits.
    private static let root: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tls-tests-\(getpid())-\(UUID().uuidString.prefix(8))").path
        atexit { try? FileManager.default.removeItem(atPath: TestPKI.root) }
        return path
    }()

    private static func build() throws(OpenSSLError) -> TestPKI {
        let dir = Self.root
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Self.config.write(toFile: "\(dir)/openssl.cnf", atomically: true, encoding: .utf8)
        } catch {
            throw OpenSSLError(command: "mkdir \(dir)", output: "\(error)")
        }
        let openssl = OpenSSL(directory: dir)

        try openssl.newKey("ca.key")
        try openssl.run(["req", "-config", "openssl.cnf", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Ferry Test CA", "-days", "3650", "-set_serial", "1", "-extensions", "v3_ca", "-out", "ca.pem"])
        try openssl.newKey("foreign-ca.key")
        try openssl.run(["req", "-config", "openssl.cnf", "-x509", "-new", "-key", "foreign-ca.key", "-subj", "/CN=Some Other CA", "-days", "3650", "-set_serial", "2", "-extensions", "v3_ca", "-out", "foreign-ca.pem"])

        func leaf(_ name: String, cn: String, serial: String, extensions: String, ca: String = "ca") throws(OpenSSLError) -> TestCertificatePair {
            try openssl.newKey("\(name).key")
            try openssl.run(["req", "-config", "openssl.cnf", "-new", "-key", "\(name).key", "-subj", "/CN=\(cn)", "-out", "\(name).csr"])
            try openssl.run([
                "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-set_serial", "0x\(serial)", "-days", "825",
                "-sha256", "-extfile", "openssl.cnf", "-extensions", extensions, "-out", "\(name).pem",
            ])
            return TestCertificatePair(certificatePath: "\(dir)/\(name).pem", keyPath: "\(dir)/\(name).key", serial: Self.bytes(hex: serial))
        }

        let localhost = try leaf("localhost", cn: "localhost", serial: "1001", extensions: "server_localhost")
        let other = try leaf("other", cn: "other.test", serial: "1002", extensions: "server_other")
        let renewed = try leaf("renewed", cn: "localhost", serial: "2001", extensions: "server_localhost")
        let renewedAgain = try leaf("renewed-again", cn: "localhost", serial: "2002", extensions: "server_localhost")
        let alice = try leaf("alice", cn: "alice", serial: "3001", extensions: "client")
        let mallory = try leaf("mallory", cn: "mallory", serial: "3002", extensions: "client")
        let foreignAlice = try leaf("foreign-alice", cn: "alice", serial: "3003", extensions: "client", ca: "foreign-ca")

        // An expired certificate: `openssl ca` is the tool that takes explicit start and end dates.
        do {
            try FileManager.default.createDirectory(atPath: "\(dir)/ca-issued", withIntermediateDirectories: true)
            try "".write(toFile: "\(dir)/index.txt", atomically: true, encoding: .utf8)
            try "4001\n".write(toFile: "\(dir)/serial", atomically: true, encoding: .utf8)
        } catch {
            throw OpenSSLError(command: "prepare the CA database", output: "\(error)")
        }
        try openssl.newKey("expired.key")
        try openssl.run([
            "req", "-config", "openssl.cnf", "-new", "-key", "expired.key", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", "expired.csr",
        ])
        try openssl.run([
            "ca", "-batch", "-config", "openssl.cnf", "-name", "expired_ca", "-in", "expired.csr", "-out", "expired.pem", "-notext",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
        ])
        let expired = TestCertificatePair(certificatePath: "\(dir)/expired.pem", keyPath: "\(dir)/expired.key", serial: [0x40, 0x01])

        try openssl.newKey("stray.key")
        try openssl.run(["pkey", "-in", "localhost.key", "-aes256", "-passout", "pass:x", "-out", "encrypted.key"])
        do {
            try "this is not a PEM file\n".write(toFile: "\(dir)/garbage.pem", atomically: true, encoding: .utf8)
        } catch {
            throw OpenSSLError(command: "write garbage.pem", output: "\(error)")
        }

        return TestPKI(
            directory: dir,
            caPath: "\(dir)/ca.pem",
            localhost: localhost,
            other: other,
            localhostRenewed: renewed,
            localhostRenewedAgain: renewedAgain,
            alice: alice,
            mallory: mallory,
            foreignAlice: foreignAlice,
            foreignCAPath: "\(dir)/foreign-ca.pem",
            expired: expired,
            strayKeyPath: "\(dir)/stray.key",
            encryptedKeyPath: "\(dir)/encrypted.key",
            garbagePath: "\(dir)/garbage.pem"
        )
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// `req` needs a distinguished-name section even with `-subj`; the rest are the extension sets and
    /// the minimal `openssl ca` set-up for the expired certificate.
    private static let config = """
        [ req ]
        distinguished_name = dn
        prompt = no

        [ dn ]
        CN = placeholder

        [ v3_ca ]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash

        [ server_localhost ]
        basicConstraints = CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1

        [ server_other ]
        basicConstraints = CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:other.test, DNS:*.wild.test

        [ client ]
        basicConstraints = CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth

        [ expired_ca ]
        database = index.txt
        new_certs_dir = ca-issued
        serial = serial
        certificate = ca.pem
        private_key = ca.key
        default_md = sha256
        policy = policy_cn
        copy_extensions = copy
        unique_subject = no

        [ policy_cn ]
        commonName = supplied

        """
}

struct OpenSSLError: Error, CustomStringConvertible {
    var command: String
    var output: String
    var description: String { "openssl failed: \(self.command)\n\(self.output)" }
}

/// Runs `openssl` in one folder.
struct OpenSSL {
    var directory: String

    func newKey(_ name: String) throws(OpenSSLError) {
        try self.run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name])
    }

    func run(_ arguments: [String]) throws(OpenSSLError) {
        let process = Process()
        let installed = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if let installed {
            process.executableURL = URL(fileURLWithPath: installed)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: self.directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let command = "openssl " + arguments.joined(separator: " ")
        do {
            try process.run()
        } catch {
            throw OpenSSLError(command: command, output: "cannot start openssl: \(error)")
        }
        // Small outputs only; reading to the end also waits for the process to close its side.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OpenSSLError(command: command, output: String(decoding: data, as: UTF8.self))
        }
    }
}
