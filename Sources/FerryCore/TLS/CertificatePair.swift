import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A certificate chain and its private key, loaded from PEM files and checked, with the names the
/// leaf certificate is valid for (used to pick a pair by SNI).
struct LoadedCertificatePair: @unchecked Sendable {
    // NIOSSLPrivateKey is immutable after loading but not marked Sendable.
    var chain: [NIOSSLCertificate]
    var key: NIOSSLPrivateKey
    /// DNS names from the subject alternative names, or the common name when there are none; lower-cased.
    var names: [String]
    var notValidAfter: time_t
    var source: ListenerTLSOptions.CertificatePair

    var isExpired: Bool { self.notValidAfter < time(nil) }

    /// Loads and checks a pair; every failure names the file and the problem.
    static func load(_ pair: ListenerTLSOptions.CertificatePair) throws(ConfigurationError) -> LoadedCertificatePair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(pair.certificatePath)
        } catch {
            throw ConfigurationError(flag: "--tls-cert", value: pair.certificatePath, problem: "not a PEM certificate (\(error))", expected: "a file with -----BEGIN CERTIFICATE----- blocks")
        }
        guard let leaf = chain.first else {
            throw ConfigurationError(flag: "--tls-cert", value: pair.certificatePath, problem: "no certificate in the file", expected: "a file with -----BEGIN CERTIFICATE----- blocks")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: pair.keyPath, format: .pem)
        } catch {
            if Self.looksEncrypted(pair.keyPath) {
                throw ConfigurationError(flag: "--tls-key", value: pair.keyPath, problem: "the key is encrypted and Ferry takes no password", expected: "an unencrypted key, e.g. openssl pkey -in KEY -out KEY.plain")
            }
            throw ConfigurationError(flag: "--tls-key", value: pair.keyPath, problem: "not a PEM private key (\(error))", expected: "a file with a -----BEGIN PRIVATE KEY----- block")
        }
        // BoringSSL refuses a key that does not belong to the leaf certificate when a context is built.
        var check = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        check.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: check)
        } catch {
            throw ConfigurationError(flag: "--tls-key", value: pair.keyPath, problem: "the key does not match the certificate \(pair.certificatePath)", expected: "the private key of that certificate")
        }
        return LoadedCertificatePair(chain: chain, key: key, names: Self.names(of: leaf), notValidAfter: leaf.notValidAfter, source: pair)
    }

    /// True if `hostname` (from SNI) is one of this certificate's names, wildcards matching one label.
    func matches(hostname: String) -> Bool {
        let host = hostname.lowercased()
        return self.names.contains { name in
            if name == host { return true }
            guard name.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
            return host[dot...] == name.dropFirst()
        }
    }

    static func names(of certificate: NIOSSLCertificate) -> [String] {
        var names: [String] = []
        for name in certificate._subjectAlternativeNames() where name.nameType == .dnsName {
            names.append(String(decoding: name.contents, as: UTF8.self).lowercased())
        }
        if names.isEmpty {
            names = certificate.subjectName.filter { $0.type == .commonName }.map { $0.value.lowercased() }
        }
        return names
    }

    private static func looksEncrypted(_ path: String) -> Bool {
        guard let file = fopen(path, "r") else { return false }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = fread(&buffer, 1, buffer.count - 1, file)
        let text = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.contains("ENCRYPTED")
    }
}
