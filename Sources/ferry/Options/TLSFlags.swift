import ArgumentParser
import FerryCore

/// wss:// for clients, mutual TLS, and trust for tls:// backends. Shown under "TLS" in `ferry --help`.
struct TLSFlags: ParsableArguments {
    @Option(help: ArgumentHelp("PEM certificate chain for wss://; give --tls-key after it. Repeat the pair to serve several certificates, chosen by SNI (the first one otherwise).", valueName: "file"))
    var tlsCert: [String] = []

    @Option(help: ArgumentHelp("PEM private key of the --tls-cert before it (unencrypted).", valueName: "file"))
    var tlsKey: [String] = []

    @Flag(help: "Refuse plaintext: a plain HTTP client gets 400 'use wss://'. Without it one port serves ws:// and wss://.")
    var tlsOnly = false

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

    func apply(to options: inout CommandLineOptions) {
        options.tlsCert = self.tlsCert
        options.tlsKey = self.tlsKey
        options.tlsOnly = self.tlsOnly
        options.tlsMinVersion = self.tlsMinVersion
        options.tlsCiphers = self.tlsCiphers
        options.tlsClientCA = self.tlsClientCa
        options.tlsClientAuth = self.tlsClientAuth
        options.backendCA = self.backendCa
    }
}
