/// The relay a `ferry connect` session goes to: `ws://` or `wss://`, a host, a port, and the route's
/// path with its query, as the upgrade request names them.
public struct WebSocketURL: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    /// A host name or an IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    /// The path, `/` at least.
    public var path: String
    /// What follows `?`, without it; nil when the URL has none.
    public var query: String?

    public init(secure: Bool, host: String, port: Int, path: String = "/", query: String? = nil) {
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }

    static let expected = "ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH, e.g. wss://relay.example.com/ssh"

    /// Parses the URL argument. User information (`user:password@`) is refused rather than sent
    /// somewhere unexpected: `--basic-auth` says what it is for, and keeps the password out of
    /// `ps` with `@FILE`. A fragment means nothing to a WebSocket and is refused too.
    public static func parse(_ text: String, flag: String = "URL") throws(ConfigurationError) -> WebSocketURL {
        let lower = text.lowercased()
        let secure: Bool
        if lower.hasPrefix("wss://") {
            secure = true
        } else if lower.hasPrefix("ws://") {
            secure = false
        } else if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            let scheme = lower.hasPrefix("https://") ? "wss" : "ws"
            throw ConfigurationError(flag: flag, value: text, problem: "is an HTTP URL", expected: "the same address with \(scheme)://")
        } else {
            throw ConfigurationError(flag: flag, value: text, problem: "is not a ws:// or wss:// URL", expected: Self.expected)
        }
        let rest = text.dropFirst(secure ? "wss://".count : "ws://".count)
        guard !rest.contains("#") else {
            throw ConfigurationError(flag: flag, value: text, problem: "has a #fragment, which a WebSocket URL cannot have", expected: Self.expected)
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.contains("@") else {
            throw ConfigurationError(flag: flag, value: "", problem: "holds user:password@, which would be sent nowhere", instead: "give them with --basic-auth USER:PASSWORD or --basic-auth @FILE")
        }
        let (host, port) = try Self.hostAndPort(authority, secure: secure, flag: flag, text: text)
        var target = rest[authorityEnd...]
        var query: String?
        if let mark = target.firstIndex(of: "?") {
            query = String(target[target.index(after: mark)...])
            target = target[..<mark]
        }
        let path = target.isEmpty ? "/" : String(target)
        guard (path + (query ?? "")).utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigurationError(flag: flag, value: text, problem: "has spaces or characters that must be percent-encoded", expected: "a URL with %XX escapes")
        }
        return WebSocketURL(secure: secure, host: host, port: port, path: path, query: query)
    }

    private static func hostAndPort(_ authority: Substring, secure: Bool, flag: String, text: String) throws(ConfigurationError) -> (String, Int) {
        let parsed = try URLAuthority.parse(authority, defaultPort: secure ? 443 : 80, flag: flag, value: text, expected: Self.expected, bracketed: "wss://[::1]:8443/PATH")
        return (parsed.host, parsed.port)
    }

    /// `HOST[:PORT]` as the `Host` header carries it: IPv6 in brackets, the scheme's default port left out.
    public var hostHeader: String {
        let name = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.secure ? 443 : 80) ? name : "\(name):\(self.port)"
    }

    /// The URL without its query, which may hold a token (`--token-in query`): what logs and messages show.
    public var description: String {
        "\(self.secure ? "wss" : "ws")://\(self.hostHeader)\(self.path)"
    }
}
