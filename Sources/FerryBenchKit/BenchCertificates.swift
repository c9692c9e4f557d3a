import Foundation
import NIOSSL

/// Self-signed certificates for the TLS rows, made with the `openssl` command in a temporary folder.
public struct BenchCertificates: Sendable {
    public struct Pair: Sendable {
        public var name: String
        public var certificatePath: String
        public var keyPath: String
    }

    public let ecdsa: Pair
    public let rsa: Pair
    /// Where the files are; ``remove()`` deletes it once the TLS rows are done.
    public let folder: URL

    public static func make() throws -> BenchCertificates {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bench-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func pair(_ name: String, _ file: String, _ keyArguments: [String]) throws -> Pair {
            let certificate = folder.appendingPathComponent("\(file).pem").path
            let key = folder.appendingPathComponent("\(file).key").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments =
                ["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate]
                + keyArguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw BenchError.relayDidNotStart("openssl could not make a \(name) certificate") }
            return Pair(name: name, certificatePath: certificate, keyPath: key)
        }
        do {
            return BenchCertificates(
                ecdsa: try pair("ECDSA P-256", "ecdsa-p256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                rsa: try pair("RSA-2048", "rsa-2048", ["-newkey", "rsa:2048"]),
                folder: folder
            )
        } catch {
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(at: self.folder)
    }

    /// A client context that accepts the self-signed certificates (the benchmark measures, it does not verify).
    public static func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }
}
