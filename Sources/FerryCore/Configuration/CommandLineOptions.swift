import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The relay's flags as the user typed them. The `ferry` executable fills this in; ``parse()`` checks
/// every value and names the flag and the fix when one is wrong, so the messages are the same however
/// the relay is started.
public struct CommandLineOptions: Sendable {
    public var listen: [String] = []
    public var route: [String] = []
    /// websockify's form: `[addr:]port target`.
    public var positional: [String] = []
    public var allowOrigin: [String] = []
    public var serverName: [String] = []
    public var maxConnections: String?
    public var maxConnectionsPerIP: String?
    public var maxHandshakesPerSecondPerIP: String?
    public var bufferSize: String?
    public var maxMessageSize: String?
    public var handshakeTimeout: String?
    public var connectTimeout: String?
    public var idleTimeout: String?
    public var pingInterval: String?
    public var pingTimeout: String?
    public var maxHeaderSize: String?
    public var logLevel: String?
    public var logFormat: String?
    public var tlsCert: [String] = []
    public var tlsKey: [String] = []
    public var tlsOnly = false
    public var tlsMinVersion: String?
    public var tlsClientCA: String?
    public var tlsClientAuth: String?
    public var backendCA: String?
    public var tokenCookie: String?
    public var tokenFile: String?
    public var jwtKey: String?
    public var jwtIssuer: String?
    public var jwtAudience: String?
    public var jwtEnforceExpiryOnSession = false
    public var allowTarget: [String] = []
    public var trustedProxy: [String] = []
    public var adminListen: String?
    public var drainDelay: String?
    public var drainTimeout: String?
    public var web: String?
    public var webHeaders: String?
    /// websockify's TokenFileName: a folder whose file names are tokens and contents targets.
    public var tokenFilenames: String?
    /// websockify's UnixDomainSocketDirectory: a token names a socket in this folder.
    public var tokenSockets: String?
    /// websockify's `--host-token`: the token is the request's host name.
    public var tokenFromHost = false
    /// `raw` (default) or `base64url`: how an HMAC secret in `--jwt-key` is written.
    public var jwtSecretEncoding: String?
    /// Only `--allow-origin` entries get in (websockify's ExpectOrigin).
    public var onlyListedOrigins = false
    public var tlsCiphers: String?
    public var logFile: String?
    /// Record each session to PREFIX.N (websockify's `--record` format).
    public var record: String?
    public var exitWhenIdle: String?
    public var acceptFor: String?
    public var runOnce = false
    /// `USER:PASSWORD` or `@FILE`, repeatable.
    public var basicAuth: [String] = []
    public var basicAuthWeb = false

    public init() {}

    /// The validated configuration, or the first problem found.
    public func parse() throws(ConfigurationError) -> (FerryConfiguration, LoggingOptions) {
        var listeners = try self.listen.map { (text) throws(ConfigurationError) in try ListenAddress.parse(text) }
        var routes = try self.route.map { (text) throws(ConfigurationError) in try Route.parse(text) }

        switch self.positional.count {
        case 0:
            break
        case 2:
            listeners.append(try ListenAddress.parse(self.positional[0], flag: "[addr:]port", allowBarePort: true))
            let target = try BackendTarget.parse(self.positional[1], flag: "target", context: self.positional[1])
            routes.append(Route(path: "/", target: target))
        default:
            throw ConfigurationError(
                flag: "arguments",
                value: self.positional.joined(separator: " "),
                problem: "the short form takes two arguments",
                expected: "[ADDR:]PORT TARGET, e.g. ferry 6080 localhost:5900, or --listen and --route"
            )
        }
        guard !listeners.isEmpty else {
            throw ConfigurationError(flag: "--listen", value: "", problem: "no listen address given", expected: "--listen ADDR:PORT, or the short form: ferry 6080 localhost:5900")
        }
        guard !routes.isEmpty else {
            throw ConfigurationError(flag: "--route", value: "", problem: "no route given", expected: "--route PATH=HOST:PORT, or the short form: ferry 6080 localhost:5900")
        }
        for case .unix(let path) in routes.map(\.target) {
            try Self.checkSocketPath(path, route: routes.first { $0.target == .unix(path: path) }!)
        }

        var limits = Limits()
        limits.maxConnections = try Self.count("--max-connections", self.maxConnections, default: limits.maxConnections, minimum: 1)
        limits.maxConnectionsPerIP = try Self.count("--max-connections-per-ip", self.maxConnectionsPerIP, default: limits.maxConnectionsPerIP, minimum: 0)
        limits.maxHandshakesPerSecondPerIP = try Self.count(
            "--max-handshakes-per-second-per-ip", self.maxHandshakesPerSecondPerIP, default: limits.maxHandshakesPerSecondPerIP, minimum: 0
        )
        limits.bufferSize = try Self.size("--buffer-size", self.bufferSize, default: limits.bufferSize, minimum: 4096)
        limits.maxMessageSize = try Self.size("--max-message-size", self.maxMessageSize, default: limits.maxMessageSize, minimum: 0)
        limits.handshakeTimeout = try Self.duration("--handshake-timeout", self.handshakeTimeout, default: limits.handshakeTimeout, allowZero: false)
        limits.connectTimeout = try Self.duration("--connect-timeout", self.connectTimeout, default: limits.connectTimeout, allowZero: false)
        limits.idleTimeout = try Self.duration("--idle-timeout", self.idleTimeout, default: limits.idleTimeout, allowZero: true)
        limits.pingInterval = try Self.duration("--ping-interval", self.pingInterval, default: limits.pingInterval, allowZero: true)
        limits.pingTimeout = try Self.duration("--ping-timeout", self.pingTimeout, default: limits.pingTimeout, allowZero: false)
        limits.drainDelay = try Self.duration("--drain-delay", self.drainDelay, default: limits.drainDelay, allowZero: true)
        limits.drainTimeout = try Self.duration("--drain-timeout", self.drainTimeout, default: limits.drainTimeout, allowZero: true)
        limits.maxHeaderSize = try Self.size("--max-header-size", self.maxHeaderSize, default: limits.maxHeaderSize, minimum: 1024)

        let origins = try self.allowOrigin.map { (text) throws(ConfigurationError) in try OriginPolicy.validate(text) }
        if self.onlyListedOrigins && origins.isEmpty {
            throw ConfigurationError(flag: "--only-listed-origins", value: "", problem: "no origin is listed, so every browser would be refused", expected: "--allow-origin SCHEME://HOST[:PORT]")
        }
        if let backendCA { try Self.checkReadable(backendCA, flag: "--backend-ca") }
        let configuration = try FerryConfiguration(
            listeners: listeners,
            routes: routes,
            originPolicy: OriginPolicy(
                allowed: origins,
                onlyListed: self.onlyListedOrigins,
                serverNames: try self.serverName.map { (text) throws(ConfigurationError) in try OriginPolicy.validateServerName(text) }
            ),
            limits: limits,
            tls: try self.listenerTLS(),
            backendTLS: BackendTLSOptions(extraCAPath: self.backendCA),
            auth: try self.authOptions(),
            web: try self.webOptions(),
            trustedProxies: try self.trustedProxy.filter { $0 != "unix" }.map { (text) throws(ConfigurationError) in
                guard let block = AddressBlock(text) else {
                    throw ConfigurationError(flag: "--trusted-proxy", value: text, problem: "not an address or CIDR block", expected: "e.g. 10.0.0.0/8, 192.0.2.10, fd00::/8, or unix for a proxy on a Unix-socket listener")
                }
                return block
            },
            trustsUnixSocketPeers: self.trustedProxy.contains("unix"),
            adminListen: try self.adminListen.map { (text) throws(ConfigurationError) in try ListenAddress.parse(text, flag: "--admin-listen", allowUnix: false) },
            recordPrefix: try self.recordPrefix(),
            lifetime: try self.serverLifetime()
        )
        return (configuration, try self.loggingOptions())
    }

    /// `--record PREFIX`: the folder must exist; each session writes PREFIX.N.
    func recordPrefix() throws(ConfigurationError) -> String? {
        guard let prefix = self.record else { return nil }
        let folderPath = parentFolder(of: prefix)
        var info = stat()
        guard !prefix.isEmpty, !prefix.hasSuffix("/"), stat(folderPath, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, access(folderPath, W_OK) == 0 else {
            throw ConfigurationError(flag: "--record", value: prefix, problem: "not a file name in a writable folder", expected: "e.g. --record /var/lib/ferry/rec/session (files session.1, session.2, ...)")
        }
        return prefix
    }

    /// `--exit-when-idle`, `--accept-for` and `--run-once`: when the server ends by itself.
    func serverLifetime() throws(ConfigurationError) -> ServerLifetime {
        var lifetime = ServerLifetime()
        if self.exitWhenIdle != nil {
            lifetime.exitWhenIdle = try Self.duration("--exit-when-idle", self.exitWhenIdle, default: .zero, allowZero: false)
        }
        if self.acceptFor != nil {
            lifetime.acceptFor = try Self.duration("--accept-for", self.acceptFor, default: .zero, allowZero: false)
        }
        lifetime.runOnce = self.runOnce
        return lifetime
    }

    func webOptions() throws(ConfigurationError) -> WebOptions? {
        var securityHeaders = true
        if let text = self.webHeaders {
            guard text == "none" || text == "default" else {
                throw ConfigurationError(flag: "--web-headers", value: text, problem: "unknown setting", expected: "default or none")
            }
            securityHeaders = text == "default"
        }
        guard let root = self.web else {
            if self.webHeaders != nil {
                throw ConfigurationError(flag: "--web-headers", value: self.webHeaders ?? "", problem: "needs a folder", expected: "--web DIR")
            }
            return nil
        }
        return WebOptions(root: root, securityHeaders: securityHeaders)
    }

    /// Parses the token and target flags.
    func authOptions() throws(ConfigurationError) -> AuthOptions {
        var options = AuthOptions()
        if let name = self.tokenCookie {
            let valid = !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
            guard valid else {
                throw ConfigurationError(flag: "--token-cookie", value: name, problem: "not a cookie name", expected: "letters, digits and -_.!~*'")
            }
            options.tokenCookie = name
        }
        if let path = self.tokenFile {
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw ConfigurationError(flag: "--token-file", value: path, problem: "not found", expected: "a TokenFile or a folder of them")
            }
            options.tokenFilePath = path
        }
        if let path = self.tokenFilenames {
            try Self.checkFolder(path, flag: "--token-filenames", expected: "a folder whose files are named by token and hold HOST:PORT")
            options.tokenFilenamesPath = path
        }
        if let path = self.tokenSockets {
            guard path.hasPrefix("/") else {
                throw ConfigurationError(flag: "--token-sockets", value: path, problem: "the folder must be an absolute path", expected: "e.g. --token-sockets /run/consoles")
            }
            try Self.checkFolder(path, flag: "--token-sockets", expected: "a folder of Unix sockets named by token")
            options.tokenSocketFolder = path
        }
        options.tokenFromHost = self.tokenFromHost
        if let path = self.jwtKey {
            try Self.checkReadable(path, flag: "--jwt-key")
            options.jwtKeyPath = path
        }
        if let text = self.jwtSecretEncoding {
            guard let encoding = AuthOptions.SecretEncoding(rawValue: text) else {
                throw ConfigurationError(flag: "--jwt-secret-encoding", value: text, problem: "unknown encoding", expected: "raw or base64url")
            }
            guard options.jwtKeyPath != nil else {
                throw ConfigurationError(flag: "--jwt-secret-encoding", value: text, problem: "needs a JWT key", expected: "--jwt-key FILE")
            }
            options.jwtSecretEncoding = encoding
        }
        options.jwtIssuer = self.jwtIssuer
        options.jwtAudience = self.jwtAudience
        options.enforceExpiryOnSession = self.jwtEnforceExpiryOnSession
        if options.enforceExpiryOnSession && options.jwtKeyPath == nil {
            throw ConfigurationError(flag: "--jwt-enforce-expiry-on-session", value: "", problem: "needs JWTs", expected: "--jwt-key FILE")
        }
        if self.allowTarget.contains("any") {
            guard self.allowTarget.count == 1 else {
                throw ConfigurationError(flag: "--allow-target", value: "any", problem: "'any' allows every target, so other rules would mean nothing", expected: "either --allow-target any or a list of rules")
            }
            options.allowsAnyTarget = true
        } else {
            options.allowedTargets = try self.allowTarget.map { (text) throws(ConfigurationError) in try TargetRule.parse(text) }
        }
        if !self.basicAuth.isEmpty {
            var pairs: [(user: String, password: String)] = []
            for text in self.basicAuth { pairs += try BasicCredentials.parse(text) }
            options.basicCredentials = BasicCredentials(pairs: pairs, protectsWeb: self.basicAuthWeb)
        }
        if self.basicAuthWeb {
            guard !self.basicAuth.isEmpty else {
                throw ConfigurationError(flag: "--basic-auth-web", value: "", problem: "needs users", expected: "--basic-auth USER:PASSWORD or --basic-auth @FILE")
            }
            guard self.web != nil else {
                throw ConfigurationError(flag: "--basic-auth-web", value: "", problem: "there are no files to protect", expected: "--web DIR")
            }
        }
        if options.tokenFromHost && !options.hasTokenSource {
            throw ConfigurationError(flag: "--token-from-host", value: "", problem: "needs a token source", expected: "--token-file, --token-filenames, --token-sockets or --jwt-key")
        }
        return options
    }

    /// Parses the listener TLS flags; nil when no certificate is given.
    func listenerTLS() throws(ConfigurationError) -> ListenerTLSOptions? {
        guard !self.tlsCert.isEmpty || !self.tlsKey.isEmpty else {
            for (flag, given) in [("--tls-only", self.tlsOnly ? "" : nil), ("--tls-min-version", self.tlsMinVersion), ("--tls-client-ca", self.tlsClientCA), ("--tls-client-auth", self.tlsClientAuth), ("--tls-ciphers", self.tlsCiphers)] where given != nil {
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
        for path in self.tlsCert { try Self.checkReadable(path, flag: "--tls-cert") }
        for path in self.tlsKey { try Self.checkReadable(path, flag: "--tls-key") }
        var options = ListenerTLSOptions(pairs: zip(self.tlsCert, self.tlsKey).map { .init(certificatePath: $0, keyPath: $1) })
        options.tlsOnly = self.tlsOnly
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
        if let path = self.tlsClientCA {
            try Self.checkReadable(path, flag: "--tls-client-ca")
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

    static func checkReadable(_ path: String, flag: String) throws(ConfigurationError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "file not found", expected: "the path of a readable PEM file")
        }
        guard info.st_mode & S_IFMT == S_IFREG || info.st_mode & S_IFMT == S_IFLNK, access(path, R_OK) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "not a readable file", expected: "the path of a readable PEM file")
        }
    }

    static func checkFolder(_ path: String, flag: String, expected: String) throws(ConfigurationError) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, access(path, R_OK | X_OK) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "not a readable folder", expected: expected)
        }
    }

    /// Parses `--log-level`, `--log-format` and `--log-file`.
    public func loggingOptions() throws(ConfigurationError) -> LoggingOptions {
        var options = LoggingOptions()
        if let text = self.logLevel {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigurationError(flag: "--log-level", value: text, problem: "unknown level", expected: Logger.Level.allCases.map(\.rawValue).joined(separator: "|"))
            }
            options.level = level
        }
        if let path = self.logFile {
            guard !path.isEmpty, !path.hasSuffix("/") else {
                throw ConfigurationError(flag: "--log-file", value: path, problem: "not a file name", expected: "e.g. --log-file /var/log/ferry.log")
            }
            options.file = path
        }
        if let text = self.logFormat {
            guard let format = LogFormat(rawValue: text.lowercased()) else {
                throw ConfigurationError(flag: "--log-format", value: text, problem: "unknown format", expected: "text|json")
            }
            options.format = format
        }
        return options
    }

    /// A Unix socket target must be a socket the relay may open, when it exists; its folder must exist.
    private static func checkSocketPath(_ path: String, route: Route) throws(ConfigurationError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw ConfigurationError(flag: "--route", value: route.description, problem: "\(path) exists but is not a socket", expected: "the path of a listening Unix socket")
            }
            guard access(path, R_OK | W_OK) == 0 else {
                throw ConfigurationError(flag: "--route", value: route.description, problem: "\(path) is not readable and writable by this user", expected: "a socket this user may connect to")
            }
            return
        }
        let folder = parentFolder(of: path)
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0, folderInfo.st_mode & S_IFMT == S_IFDIR else {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "folder \(folder) does not exist", expected: "the path of a listening Unix socket")
        }
    }

    static func count(_ flag: String, _ text: String?, default value: Int, minimum: Int) throws(ConfigurationError) -> Int {
        guard let text else { return value }
        guard let number = Int(text), number >= minimum else {
            throw ConfigurationError(flag: flag, value: text, problem: "not a whole number of at least \(minimum)", expected: "e.g. \(flag) \(value)")
        }
        return number
    }

    /// Sizes: a byte count with an optional binary unit, `64k`, `256KiB`, `1MiB`, `1m`, `2G`. `KB`,
    /// `MB` and `GB` are refused: they mean powers of 1000 to some and of 1024 to others, and a
    /// buffer bound should not depend on which the reader assumed.
    static func size(_ flag: String, _ text: String?, default value: Int, minimum: Int) throws(ConfigurationError) -> Int {
        guard let text else { return value }
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isNumber }
        let unit = lower.dropFirst(digits.count)
        let multiplier: Int?
        switch unit {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = 1 << 10
        case "m", "mib": multiplier = 1 << 20
        case "g", "gib": multiplier = 1 << 30
        case "kb", "mb", "gb":
            let binary = unit.prefix(1).uppercased() + "iB"
            throw ConfigurationError(
                flag: flag, value: text,
                problem: "\(unit.uppercased()) could mean powers of 1000 or of 1024",
                expected: "\(digits)\(binary) (powers of 1024), or a plain byte count"
            )
        default: multiplier = nil
        }
        guard let number = Int(digits), let multiplier, number <= Int(Int32.max), number * multiplier >= minimum else {
            throw ConfigurationError(flag: flag, value: text, problem: "not a size of at least \(minimum) bytes", expected: "a byte count with an optional unit, e.g. 256KiB or 1MiB")
        }
        return number * multiplier
    }

    /// Durations: `500ms`, `30s`, `5m`, `1h`, or a plain number of seconds.
    static func duration(_ flag: String, _ text: String?, default value: TimeAmount, allowZero: Bool) throws(ConfigurationError) -> TimeAmount {
        guard let text else { return value }
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isNumber }
        let unit = lower.dropFirst(digits.count)
        let result: TimeAmount?
        if let number = Int64(digits), number <= 10_000_000 {
            switch unit {
            case "ms": result = .milliseconds(number)
            case "", "s": result = .seconds(number)
            case "m", "min": result = .minutes(number)
            case "h": result = .hours(number)
            default: result = nil
            }
        } else {
            result = nil
        }
        guard let result, allowZero || result > .zero else {
            let zero = allowZero ? " (0 turns it off)" : ""
            throw ConfigurationError(flag: flag, value: text, problem: "not a duration", expected: "a number with a unit, e.g. 500ms, 30s, 5m or 1h\(zero)")
        }
        return result
    }
}

/// Log level and format, parsed with the other flags.
public struct LoggingOptions: Sendable, Equatable {
    public var level: Logger.Level = .info
    public var format: LogFormat = .text
    /// Log lines also go to this file (`--log-file`), appended.
    public var file: String?

    public init() {}
}
