import Logging
import NIOConcurrencyHelpers
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The listeners' TLS context, rebuilt from the certificate files when they change.
///
/// A `NIOSSLContext` cannot change, so a reload builds a new one and swaps it in: connections accepted
/// afterwards get it, live sessions keep the one they started with. A reload that fails (bad PEM, a
/// key that does not match) is logged with the reason and the last good context stays in use.
///
/// Why not swift-nio-extras' `TimedCertificateReloader`: it serves one certificate pair, while Ferry
/// serves several and picks one by SNI, and it would pull swift-crypto and X509 into the build only
/// to watch files.
public final class ServerTLSContextProvider: Reloadable, Sendable {
    private struct State {
        var context: NIOSSLContext
        var pairs: [LoadedCertificatePair]
        var stamps: [FileStamp]
    }

    public let options: ListenerTLSOptions
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    /// Loads every pair; a problem stops start-up with a message naming the file. An expired
    /// certificate is only a warning (it may be renewed by a reload).
    public init(options: ListenerTLSOptions, logger: Logger) throws(ConfigurationError) {
        self.options = options
        self.logger = logger
        let pairs = try options.pairs.map { (pair) throws(ConfigurationError) in try LoadedCertificatePair.load(pair) }
        let context = try Self.makeContext(pairs: pairs, options: options)
        self.state = NIOLockedValueBox(State(context: context, pairs: pairs, stamps: Self.stamps(options)))
        Self.warnIfExpired(pairs, logger: logger)
    }

    /// The context for a new connection.
    public var context: NIOSSLContext { self.state.withLockedValue { $0.context } }

    /// The leaf certificates in use, first pair first (tests check reloads by serial number).
    public var leafCertificates: [NIOSSLCertificate] { self.state.withLockedValue { $0.pairs.compactMap(\.chain.first) } }

    /// Loads the files again and swaps the context in; returns false (keeping the old one) on failure.
    @discardableResult
    public func reload() -> Bool {
        let stamps = Self.stamps(self.options)
        do {
            let pairs = try self.options.pairs.map { (pair) throws(ConfigurationError) in try LoadedCertificatePair.load(pair) }
            let context = try Self.makeContext(pairs: pairs, options: self.options)
            self.state.withLockedValue { $0 = State(context: context, pairs: pairs, stamps: stamps) }
            Self.warnIfExpired(pairs, logger: self.logger)
            self.logger.info("TLS certificates reloaded", metadata: ["pairs": "\(pairs.count)"])
            return true
        } catch {
            // Remember the stamps so a broken file is reported once, not on every poll.
            self.state.withLockedValue { $0.stamps = stamps }
            self.logger.error("TLS certificate reload failed; keeping the certificates in use", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func reloadIfChanged() {
        let changed = self.state.withLockedValue { $0.stamps } != Self.stamps(self.options)
        if changed { self.reload() }
    }

    static func makeContext(pairs: [LoadedCertificatePair], options: ListenerTLSOptions) throws(ConfigurationError) -> NIOSSLContext {
        let first = pairs[0]
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: first.chain.map { .certificate($0) },
            privateKey: .privateKey(first.key)
        )
        configuration.minimumTLSVersion = options.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = options.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        if let ciphers = options.cipherSuites {
            configuration.cipherSuites = ciphers
        }
        if let caPath = options.clientCAPath {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(caPath)
            } catch {
                throw ConfigurationError(flag: "--tls-client-ca", value: caPath, problem: "not a PEM certificate (\(error))")
            }
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = options.clientAuthentication == .require ? .noHostnameVerification : .optionalVerification
            configuration.sendCANameList = true
        }
        if pairs.count > 1 {
            // SNI: serve the pair whose names match; the first pair (the context's own) otherwise.
            let others = Array(pairs.dropFirst())
            configuration.sslContextCallback = { values, promise in
                guard let hostname = values.serverHostname, let match = others.first(where: { $0.matches(hostname: hostname) }),
                    !first.matches(hostname: hostname)
                else {
                    promise.succeed(.noChanges)
                    return
                }
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = match.chain.map { .certificate($0) }
                override.privateKey = .privateKey(match.key)
                promise.succeed(override)
            }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            if let ciphers = options.cipherSuites {
                throw ConfigurationError(flag: "--tls-ciphers", value: ciphers, problem: "BoringSSL accepts no cipher from this list (\(error))", expected: "an OpenSSL cipher string, e.g. ECDHE+AESGCM:ECDHE+CHACHA20")
            }
            throw ConfigurationError(flag: "--tls-cert", value: first.source.certificatePath, problem: "cannot build a TLS context (\(error))")
        }
    }

    private static func warnIfExpired(_ pairs: [LoadedCertificatePair], logger: Logger) {
        for pair in pairs where pair.isExpired {
            logger.warning(
                "TLS certificate has expired; clients will refuse it",
                metadata: ["file": "\(pair.source.certificatePath)", "not_after_unix": "\(pair.notValidAfter)"]
            )
        }
    }

    private static func stamps(_ options: ListenerTLSOptions) -> [FileStamp] {
        (options.pairs.flatMap { [$0.certificatePath, $0.keyPath] } + [options.clientCAPath].compactMap { $0 }).map(FileStamp.init)
    }
}
