/// Which browser origins may open sessions.
///
/// Browsers attach `Origin` to every WebSocket handshake and let any page connect anywhere, so without a
/// check any web site a user visits could reach the user's relay (cross-site WebSocket hijacking). The
/// default lets in clients that send no `Origin` (not browsers) and pages served from the relay's own
/// host name; `--allow-origin` adds more.
public struct OriginPolicy: Sendable, Equatable {
    /// Lower-cased `scheme://host[:port]` entries from `--allow-origin`.
    public var allowed: Set<String>
    /// `--allow-origin '*'`: any origin.
    public var allowsAny: Bool

    /// Only listed origins get in: no `Origin`, or the relay's own host, is refused (websockify's
    /// ExpectOrigin).
    public var onlyListed: Bool

    public init(allowed: [String] = [], onlyListed: Bool = false) {
        self.onlyListed = onlyListed
        self.allowsAny = allowed.contains("*")
        self.allowed = Set(allowed.filter { $0 != "*" }.map { Self.normalize($0) })
    }

    /// Parses one `--allow-origin` value.
    static func validate(_ text: String) throws(ConfigurationError) -> String {
        if text == "*" { return text }
        guard let (scheme, host) = Self.schemeAndHost(text), !host.isEmpty, scheme == "http" || scheme == "https" else {
            throw ConfigurationError(flag: "--allow-origin", value: text, problem: "not an origin", expected: "SCHEME://HOST[:PORT] such as https://example.com, or *")
        }
        return text
    }

    /// Decides for a request's `Origin` and `Host` headers.
    public func allows(origin: String?, host: String?) -> Bool {
        guard let origin else { return !self.onlyListed }
        if self.allowsAny { return true }
        if self.allowed.contains(Self.normalize(origin)) { return true }
        if self.onlyListed { return false }
        guard let (_, originHost) = Self.schemeAndHost(origin), let host, let requestHost = Self.hostName(host) else {
            return false
        }
        return Self.hostName(originHost) == requestHost
    }

    private static func normalize(_ origin: String) -> String {
        var value = origin.lowercased()
        while value.hasSuffix("/") { value.removeLast() }
        return value
    }

    /// Splits `scheme://authority` into the scheme and the authority (host and optional port).
    private static func schemeAndHost(_ origin: String) -> (String, String)? {
        guard let colon = origin.firstIndex(of: ":"), origin[colon...].hasPrefix("://") else { return nil }
        let scheme = origin[..<colon].lowercased()
        var authority = origin[origin.index(colon, offsetBy: 3)...]
        if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
        return (scheme, String(authority))
    }

    /// The host name of an authority (`host`, `host:port`, `[v6]:port`), lower-cased, without the port.
    static func hostName(_ authority: String) -> String? {
        let value = authority.lowercased()
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            return String(value[value.index(after: value.startIndex)..<close])
        }
        if let colon = value.lastIndex(of: ":") { return String(value[..<colon]) }
        return value.isEmpty ? nil : value
    }
}
