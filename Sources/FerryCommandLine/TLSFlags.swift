import ArgumentParser
import FerryCore

/// wss:// for clients, mutual TLS, and trust for tls:// backends. Shown under "TLS" in `ferry --help`.
public struct TLSFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("PEM certificate chain for wss://; give --tls-key after it. Repeat the pair to serve several certificates, chosen by SNI (the first one otherwise).", valueName: "file"))
    var tlsCert: [String] = []

    @Option(help: ArgumentHelp("PEM private key of the --tls-cert before it (unencrypted).", valueName: "file"))
    var tlsKey: [String] = []

    @Flag(help: "Refuse plaintext: a plain HTTP client gets 400 'use wss://'. Without it one port serves ws:// and wss://.")
    var tlsOnly = false

    @Option(help: ArgumentHelp("on: ALPN offers h2, and browsers carry WebSockets as streams of one HTTP/2 connection (RFC 8441); off: HTTP/1.1 only. (default: on)", valueName: "on|off"))
    var http2: String?

    @Option(help: ArgumentHelp("Lowest TLS version accepted: 1.2 or 1.3. (default: 1.2)", valueName: "version"))
    var tlsMinVersion: String?

    @Option(help: ArgumentHelp("TLS 1.2 cipher suites, as an OpenSSL cipher string. (default: BoringSSL's)", valueName: "list"))
    var tlsCiphers: String?

    @Option(help: ArgumentHelp("PEM CA that signs client certificates (mutual TLS).", valueName: "file"))
    var tlsClientCa: String?

    @Option(help: ArgumentHelp("With --tls-client-ca: require (no valid certificate, no handshake) or optional. (default: require)", valueName: "mode"))
    var tlsClientAuth: String?

    @Option(help: ArgumentHelp("PEM CA trusted for tls:// backends, besides the system store.", valueName: "file"))
    var backendCa: String?

    /// Parses the listener TLS flags; nil when no certificate is given.
    func listenerTLS() throws(ConfigurationError) -> ListenerTLSOptions? {
        guard !self.tlsCert.isEmpty || !self.tlsKey.isEmpty else {
            for (flag, given) in [("--tls-only", self.tlsOnly ? "" : nil), ("--tls-min-version", self.tlsMinVersion), ("--tls-client-ca", self.tlsClientCa), ("--tls-client-auth", self.tlsClientAuth), ("--tls-ciphers", self.tlsCiphers), ("--http2", self.http2)] where given != nil {
                throw ConfigurationError(flag: flag, value: given ?? "", problem: "needs a certificate", expected: "--tls-cert FILE --tls-key FILE")
            }
            return nil
        }
        guard self.tlsCert.count == self.tlsKey.count else {
            throw ConfigurationError(
                flag: "--tls-cert",
                value: "",
                problem: "\(self.tlsCert.count) certificate(s) but \(self.tlsKey.count) key(s)",
                expected: "one --tls-key after each --tls-cert"
            )
        }
        for path in self.tlsCert { try FlagValue.checkReadable(path, flag: "--tls-cert") }
        for path in self.tlsKey { try FlagValue.checkReadable(path, flag: "--tls-key") }
        var options = ListenerTLSOptions(pairs: zip(self.tlsCert, self.tlsKey).map { .init(certificatePath: $0, keyPath: $1) })
        options.tlsOnly = self.tlsOnly
        switch self.http2 {
        case nil, "on": options.http2 = true
        case "off": options.http2 = false
        case let other?: throw ConfigurationError(flag: "--http2", value: other, problem: "not on or off", expected: "--http2 on (the default) or --http2 off")
        }
        if let text = self.tlsMinVersion {
            guard let version = ListenerTLSOptions.MinimumVersion(rawValue: text) else {
                throw ConfigurationError(flag: "--tls-min-version", value: text, problem: "unknown version", expected: "1.2 or 1.3")
            }
            options.minimumVersion = version
        }
        if let text = self.tlsCiphers {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigurationError(flag: "--tls-ciphers", value: text, problem: "not a cipher list", expected: "an OpenSSL cipher string, e.g. ECDHE+AESGCM:ECDHE+CHACHA20")
            }
            options.cipherSuites = text
        }
        if let path = self.tlsClientCa {
            try FlagValue.checkReadable(path, flag: "--tls-client-ca")
            options.clientCAPath = path
        }
        if let text = self.tlsClientAuth {
            guard let mode = ListenerTLSOptions.ClientAuthentication(rawValue: text) else {
                throw ConfigurationError(flag: "--tls-client-auth", value: text, problem: "unknown mode", expected: "optional or require")
            }
            guard options.clientCAPath != nil else {
                throw ConfigurationError(flag: "--tls-client-auth", value: text, problem: "needs the CA that signs client certificates", expected: "--tls-client-ca FILE")
            }
            options.clientAuthentication = mode
        }
        return options
    }

    /// Trust for `tls://` backends: the system store, plus `--backend-ca`.
    func backendTLS() throws(ConfigurationError) -> BackendTLSOptions {
        if let path = self.backendCa { try FlagValue.checkReadable(path, flag: "--backend-ca") }
        return BackendTLSOptions(extraCAPath: self.backendCa)
    }
}
