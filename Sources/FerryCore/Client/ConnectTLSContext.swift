import NIOSSL

/// The TLS client context for `wss://`, built once at start-up from ``ConnectTLSOptions``: the system
/// trust store plus `--ca`, the client certificate for mutual TLS, and verification on unless
/// `--insecure`. TLS 1.2 at least, as the relay's listeners.
enum ConnectTLSContext {
    static func make(_ options: ConnectTLSOptions) throws(ConfigurationError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if options.insecure {
            configuration.certificateVerification = .none
        }
        if let path = options.caPath {
            do {
                configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(path))]
            } catch {
                throw ConfigurationError(flag: "--ca", value: path, problem: "not a PEM certificate (\(error))", expected: "the PEM file of the CA that signs the relay's certificate")
            }
        }
        switch (options.clientCertificatePath, options.clientKeyPath) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            } catch {
                throw ConfigurationError(flag: "--client-cert", value: certificate, problem: "not a PEM certificate chain (\(error))", expected: "a PEM file, the client's certificate first")
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw ConfigurationError(flag: "--client-key", value: key, problem: "not an unencrypted PEM private key (\(error))", expected: "the key of --client-cert")
            }
        case (nil, _?):
            throw ConfigurationError(flag: "--client-key", value: options.clientKeyPath ?? "", problem: "needs its certificate", expected: "--client-cert FILE --client-key FILE")
        case (_?, nil):
            throw ConfigurationError(flag: "--client-cert", value: options.clientCertificatePath ?? "", problem: "needs its key", expected: "--client-cert FILE --client-key FILE")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(flag: "--client-cert", value: options.clientCertificatePath ?? "", problem: "cannot build a TLS context (\(error))", expected: "a certificate and the key that matches it")
        }
    }
}
