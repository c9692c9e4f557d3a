import Foundation

/// An HTTP proxy that `ferry connect` tunnels through with `CONNECT` (issue 17): where it is, the
/// Basic credentials it wants, and where the setting came from (`--proxy` or an environment
/// variable), so messages can say which to fix. Its description never shows the password.
public struct ConnectProxy: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Printed as `user:***`, however it is printed.
    public struct Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
        public var user: String
        public var password: String

        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }

        public var description: String { "\(self.user):***" }
        public var debugDescription: String { self.description }
    }

    /// A host name or an IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    public var credentials: Credentials?
    /// `--proxy`, or the environment variable the URL was read from (`HTTPS_PROXY`, `http_proxy`, …).
    public var source: String

    public init(host: String, port: Int, credentials: Credentials? = nil, source: String = "--proxy") {
        self.host = host
        self.port = port
        self.credentials = credentials
        self.source = source
    }

    static let expected = "http://[USER:PASSWORD@]HOST:PORT, e.g. http://proxy.example.com:3128"

    /// Parses `http://[user:password@]host[:port][/]`. The user and password are percent-decoded (a
    /// `:` or `@` in them is written `%3A`, `%40`). No scheme means `http://`, as curl and Go read
    /// the environment variables; the port defaults to 80, the scheme's. Only `http://` proxies are
    /// spoken: TLS to the proxy itself (`https://`) and SOCKS are refused rather than half done.
    /// - Parameter source: the flag or variable named in errors.
    public static func parse(_ text: String, source: String = "--proxy") throws(ConfigurationError) -> ConnectProxy {
        // The value is shown in errors without its credentials.
        let shown = Self.redacted(text)
        var rest = Substring(text)
        if let schemeEnd = rest.range(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else {
                let problem = scheme == "https"
                    ? "is an https:// proxy, and TLS to the proxy is not supported"
                    : "is a \(scheme):// proxy; only HTTP proxies (CONNECT) are supported"
                throw ConfigurationError(flag: source, value: shown, problem: problem, expected: Self.expected)
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw ConfigurationError(flag: source, value: shown, problem: "has a path, which a proxy URL does not take", expected: Self.expected)
        }
        var credentials: Credentials?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let colon = userInfo.firstIndex(of: ":") ?? userInfo.endIndex
            guard let user = String(userInfo[..<colon]).removingPercentEncoding,
                let password = String(userInfo[colon...].dropFirst()).removingPercentEncoding,
                !user.isEmpty
            else {
                throw ConfigurationError(flag: source, value: shown, problem: "has malformed credentials", expected: "USER:PASSWORD@ with %XX escapes, e.g. http://alice:p%40ss@proxy:3128")
            }
            guard (user + password).unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }), !user.contains(":") else {
                throw ConfigurationError(flag: source, value: shown, problem: "has a control character or a ':' in the user name", expected: Self.expected)
            }
            credentials = Credentials(user: user, password: password)
        }
        let (host, port) = try Self.hostAndPort(rest, source: source, shown: shown)
        return ConnectProxy(host: host, port: port, credentials: credentials, source: source)
    }

    private static func hostAndPort(_ authority: Substring, source: String, shown: String) throws(ConfigurationError) -> (String, Int) {
        let parsed = try URLAuthority.parse(authority, defaultPort: 80, flag: source, value: shown, expected: Self.expected, bracketed: "http://[::1]:3128")
        return (parsed.host, parsed.port)
    }

    /// `text` with what is between `://` (or the start) and the last `@` of its authority replaced by
    /// `***`: what an error may show.
    static func redacted(_ text: String) -> String {
        let start = text.range(of: "://")?.upperBound ?? text.startIndex
        let authorityEnd = text[start...].firstIndex(of: "/") ?? text.endIndex
        guard let at = text[start..<authorityEnd].lastIndex(of: "@") else { return text }
        return String(text[..<start]) + "***" + String(text[at...])
    }

    /// `host:port`, an IPv6 address in brackets: what messages name.
    public var address: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// `http://host:port`, without credentials: what the start-up log shows.
    public var description: String { "http://\(self.address)" }
    public var debugDescription: String { "\(self.description) (\(self.credentials.map { "as \($0.user), " } ?? "")from \(self.source))" }

    /// The `Proxy-Authorization` value, if there are credentials.
    var authorization: String? {
        guard let credentials else { return nil }
        return "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
    }
}
