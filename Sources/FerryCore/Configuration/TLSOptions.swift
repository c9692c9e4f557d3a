/// TLS on the listeners: certificates, versions, client certificates. Nil in ``FerryConfiguration``
/// when no `--tls-cert` is given (plain `ws://` only).
public struct ListenerTLSOptions: Sendable, Equatable {
    /// A certificate chain file and its key file, both PEM.
    public struct CertificatePair: Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String

        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    public enum MinimumVersion: String, Sendable, Equatable {
        case tls12 = "1.2"
        case tls13 = "1.3"
    }

    public enum ClientAuthentication: String, Sendable, Equatable {
        /// A client certificate is asked for; one that is presented must be valid.
        case optional
        /// A client without a valid certificate fails the TLS handshake.
        case require
    }

    /// The first pair is served when the client's SNI name matches no pair.
    public var pairs: [CertificatePair]
    /// Refuse plaintext connections instead of serving `ws://` and `wss://` on one port.
    public var tlsOnly = false
    /// ALPN offers `h2` besides `http/1.1`, so browsers may carry WebSockets as streams of one
    /// HTTP/2 connection (RFC 8441); `--http2 off` keeps every connection HTTP/1.1.
    public var http2 = true
    public var minimumVersion = MinimumVersion.tls12
    /// CA file that signs client certificates (`--tls-client-ca`).
    public var clientCAPath: String?
    public var clientAuthentication = ClientAuthentication.require
    /// An OpenSSL cipher string for TLS 1.2 (`--tls-ciphers`); nil keeps BoringSSL's defaults. TLS 1.3
    /// suites are not configurable.
    public var cipherSuites: String?
    /// How often certificate files are checked for changes (SIGHUP reloads at once).
    public var reloadInterval: Duration = .seconds(2)

    public init(pairs: [CertificatePair]) {
        self.pairs = pairs
    }
}

/// TLS towards `tls://` backends.
public struct BackendTLSOptions: Sendable, Equatable {
    /// A CA file trusted in addition to the system store (`--backend-ca`).
    public var extraCAPath: String?

    public init(extraCAPath: String? = nil) {
        self.extraCAPath = extraCAPath
    }
}
