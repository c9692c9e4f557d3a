import ArgumentParser
import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Tokens (files, folders, JWTs), the targets they may name, and Basic authentication. Shown under "AUTHENTICATION" in `ferry --help`.
public struct AuthenticationFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("websockify TokenFile ('token: host:port' lines), or a folder of them; reloaded on change, removed tokens end their sessions.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("JWT key: an HMAC secret (HS256/384/512), a PEM key (RS256, ES256, EdDSA) or a JWKS file.", valueName: "file"))
    var jwtKey: String?

    @Option(help: ArgumentHelp("A dynamic target allowed by tokens: HOST:PORTS or CIDR:PORTS (PORTS: 5900, 5900-5999 or *), unix:/path, or any (trust every target the token source names, as websockify does). Repeatable; with none, dynamic targets are refused.", valueName: "rule"))
    var allowTarget: [String] = []

    @Option(help: ArgumentHelp("HTTP Basic authentication for the upgrade: USER:PASSWORD (visible to other local users in the process list), or @FILE with one USER:PASSWORD per line. Repeatable.", valueName: "credentials"))
    var basicAuth: [String] = []

    @Flag(help: "Also require --basic-auth for the --web files (websockify's --web-auth).")
    var basicAuthWeb = false

    @Option(help: ArgumentHelp("Also read the token from this cookie. (default: cookies are not read)", valueName: "name"))
    var tokenCookie: String?

    @Option(help: ArgumentHelp("A folder of files, each named by a token and holding its target HOST:PORT (websockify's TokenFileName).", valueName: "dir"))
    var tokenFilenames: String?

    @Option(help: ArgumentHelp("A folder of Unix sockets; a token is the name of one (websockify's UnixDomainSocketDirectory).", valueName: "dir"))
    var tokenSockets: String?

    @Option(help: ArgumentHelp("Tokens in Redis, shared by every replica: redis://[:PASSWORD@]HOST[:PORT][/DB][?namespace=NS] (rediss:// for TLS; the password is visible to other local users in the process list). The key NS:TOKEN holds HOST:PORT, {\"host\": \"HOST:PORT\"} or unix:/path (websockify's TokenRedis); deleting it, or its expiry, ends the token's sessions.", valueName: "url"))
    var tokenRedis: String?

    @Option(help: ArgumentHelp("CA certificates (PEM) to trust for a rediss:// --token-redis, besides the system's.", valueName: "file"))
    var tokenRedisCa: String?

    @Flag(help: "The token is the host name the client asked for (Host header, without port), as websockify's --host-token; no other place is read.")
    var tokenFromHost = false

    @Option(help: ArgumentHelp("How an HMAC secret in --jwt-key is written: raw (the file's bytes) or base64url (as websockify's JWTTokenApi reads it). (default: raw)", valueName: "encoding"))
    var jwtSecretEncoding: String?

    @Option(help: ArgumentHelp("Require this JWT 'iss'.", valueName: "issuer"))
    var jwtIssuer: String?

    @Option(help: ArgumentHelp("Require this JWT 'aud'.", valueName: "audience"))
    var jwtAudience: String?

    @Flag(help: "Close a session with 1008 when its JWT expires.")
    var jwtEnforceExpiryOnSession = false

    @Option(help: ArgumentHelp("An HTTP service that decides handshakes on routes with auth=url, and on dynamic routes no token source decides (as nginx's auth_request): a GET with the request's facts in headers; 2xx allows (X-Ferry-Target or a JSON body names a dynamic target), 401/403 refuse, anything else is 503. {token} (or %s) in the URL is the percent-encoded token.", valueName: "url"))
    var authUrl: String?

    @Option(help: ArgumentHelp("How long a request to --auth-url may take (always within the handshake's budget). (default: 2s)", valueName: "duration"))
    var authTimeout: String?

    @Option(help: ArgumentHelp("The longest an --auth-url answer's Cache-Control: max-age is honoured; 0 asks the service on every handshake. Refusals are kept at most 5 s. (default: 60s)", valueName: "duration"))
    var authCacheMax: String?

    @Option(help: ArgumentHelp("Ask --auth-url again about each live session it let in at this interval; a 401 or 403 then closes the session with 1008. (default: never)", valueName: "duration"))
    var authRevalidate: String?

    @Option(help: ArgumentHelp("CA certificates (PEM) to trust for an https:// --auth-url, besides the system's.", valueName: "file"))
    var authCa: String?

    /// Parses the token, target and Basic authentication flags (`web`: the `--web` folder, which
    /// `--basic-auth-web` protects).
    func authOptions(web: String?) throws(ConfigurationError) -> AuthOptions {
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
            try FlagValue.checkFolder(path, flag: "--token-filenames", expected: "a folder whose files are named by token and hold HOST:PORT")
            options.tokenFilenamesPath = path
        }
        if let path = self.tokenSockets {
            guard path.hasPrefix("/") else {
                throw ConfigurationError(flag: "--token-sockets", value: path, problem: "the folder must be an absolute path", expected: "e.g. --token-sockets /run/consoles")
            }
            try FlagValue.checkFolder(path, flag: "--token-sockets", expected: "a folder of Unix sockets named by token")
            options.tokenSocketFolder = path
        }
        options.tokenFromHost = self.tokenFromHost
        if let text = self.tokenRedis {
            options.redis = try RedisEndpoint.parse(text)
        }
        if let path = self.tokenRedisCa {
            guard options.redis?.usesTLS == true else {
                throw ConfigurationError(flag: "--token-redis-ca", value: path, problem: "only applies to Redis over TLS", expected: "--token-redis rediss://HOST:PORT")
            }
            try FlagValue.checkReadable(path, flag: "--token-redis-ca")
            options.redisCAPath = path
        }
        if let path = self.jwtKey {
            try FlagValue.checkReadable(path, flag: "--jwt-key")
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
            guard web != nil else {
                throw ConfigurationError(flag: "--basic-auth-web", value: "", problem: "there are no files to protect", expected: "--web DIR")
            }
        }
        options.callback = try self.callbackOptions()
        if options.tokenFromHost && !options.hasTokenSource && options.callback == nil {
            throw ConfigurationError(flag: "--token-from-host", value: "", problem: "needs a token source", expected: "--token-file, --token-filenames, --token-sockets, --jwt-key, --token-redis or --auth-url")
        }
        return options
    }

    /// `--auth-url` and the flags that only mean something with it.
    private func callbackOptions() throws(ConfigurationError) -> AuthCallbackOptions? {
        guard let url = self.authUrl else {
            for (flag, value) in [("--auth-timeout", self.authTimeout), ("--auth-cache-max", self.authCacheMax), ("--auth-revalidate", self.authRevalidate), ("--auth-ca", self.authCa)] {
                if let value { throw ConfigurationError(flag: flag, value: value, problem: "needs the service to ask", expected: "--auth-url URL") }
            }
            return nil
        }
        var options = try AuthCallbackOptions.parse(url)
        options.timeout = try FlagValue.duration("--auth-timeout", self.authTimeout, default: options.timeout, allowZero: false)
        options.cacheMax = try FlagValue.duration("--auth-cache-max", self.authCacheMax, default: options.cacheMax, allowZero: true)
        if let text = self.authRevalidate {
            options.revalidate = try FlagValue.duration("--auth-revalidate", text, default: .seconds(60), allowZero: false)
        }
        if let path = self.authCa {
            guard url.lowercased().hasPrefix("https://") else {
                throw ConfigurationError(flag: "--auth-ca", value: path, problem: "only applies to a service reached over TLS", expected: "--auth-url https://…")
            }
            try FlagValue.checkReadable(path, flag: "--auth-ca")
            options.caPath = path
        }
        return options
    }
}
