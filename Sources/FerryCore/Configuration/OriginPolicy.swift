/// Which browser origins may open sessions.
///
/// Browsers attach `Origin` to every WebSocket handshake and let any page connect anywhere, so without a
/// check any web site a user visits could reach the user's relay (cross-site WebSocket hijacking). The
/// default lets in clients that send no `Origin` (not browsers), pages whose origin `--allow-origin`
/// lists, and pages served from the host the request names, but that last rule only when that host is
/// one of the relay's own names: an IP address, `localhost`, the machine's host name, a name in its TLS
/// certificate, or a `--server-name`. Otherwise a page on `attacker.example`, whose name the attacker
/// points at the relay's address (DNS rebinding), would send a matching `Host` and `Origin` and get in.
public struct OriginPolicy: Sendable, Equatable {
    /// Lower-cased `scheme://host[:port]` entries from `--allow-origin`.
    public var allowed: Set<String>
    /// `--allow-origin '*'`: any origin.
    public var allowsAny: Bool

    /// Only listed origins get in: no `Origin`, or the relay's own host, is refused (websockify's
    /// ExpectOrigin).
    public var onlyListed: Bool

    /// The relay's own host names, lower-cased; `*.example.com` stands for every name below
    /// example.com. IP addresses and `localhost` are always the relay's own.
    public var serverNames: [String]

    public init(allowed: [String] = [], onlyListed: Bool = false, serverNames: [String] = []) {
        self.onlyListed = onlyListed
        self.allowsAny = allowed.contains("*")
        self.allowed = Set(allowed.filter { $0 != "*" }.map { Self.normalize($0) })
        self.serverNames = serverNames.map { $0.lowercased() }
    }

    /// Parses one `--allow-origin` value.
    public static func validate(_ text: String) throws(ConfigurationError) -> String {
        if text == "*" { return text }
        guard let (scheme, host) = Self.schemeAndHost(text), !host.isEmpty, scheme == "http" || scheme == "https" else {
            throw ConfigurationError(flag: "--allow-origin", value: text, problem: "not an origin", expected: "SCHEME://HOST[:PORT] such as https://example.com, or *")
        }
        return text
    }

    /// Parses one `--server-name` value: a host name, or `*.` and a domain.
    public static func validateServerName(_ text: String) throws(ConfigurationError) -> String {
        let name = text.hasPrefix("*.") ? String(text.dropFirst(2)) : text
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !name.isEmpty && name.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
        }
        guard valid else {
            throw ConfigurationError(flag: "--server-name", value: text, problem: "not a host name", expected: "a name clients use to reach the relay, such as relay.example.com or *.example.com (no scheme, no port)")
        }
        return text.lowercased()
    }

    /// Decides for a request's `Origin` and `Host` headers: nil lets the request in; otherwise why
    /// not, for the 403's body, saying what the operator can add.
    public func refusal(origin: String?, host: String?) -> String? {
        guard let origin else {
            return self.onlyListed ? "an Origin header is required; this relay lets in only the origins listed with --allow-origin" : nil
        }
        if self.allowsAny || self.allowed.contains(Self.normalize(origin)) { return nil }
        let listIt = "allow the page with --allow-origin \(Self.printable(origin))"
        if self.onlyListed { return "origin not allowed; \(listIt)" }
        guard let (_, originHost) = Self.schemeAndHost(origin), let host, let requestHost = Self.hostName(host),
            Self.hostName(originHost) == requestHost
        else {
            return "origin not allowed: the page is not from this relay's host; \(listIt)"
        }
        guard self.isOwnName(requestHost) else {
            let name = Self.printable(requestHost)
            return "origin not allowed: \(name) is not one of this relay's names; if it is, start the relay with --server-name \(name), or \(listIt)"
        }
        return nil
    }

    public func allows(origin: String?, host: String?) -> Bool {
        self.refusal(origin: origin, host: host) == nil
    }

    /// Whether a request's host name (no port) is one of the relay's own.
    func isOwnName(_ host: String) -> Bool {
        if host == "localhost" || host.hasSuffix(".localhost") { return true }  // RFC 6761: always loopback
        if IPAddressBytes.parse(host) != nil { return true }
        return self.serverNames.contains { name in
            if name.hasPrefix("*.") { return host.hasSuffix(name.dropFirst(1)) }
            return host == name
        }
    }

    private static func normalize(_ origin: String) -> String {
        var value = origin.lowercased()
        while value.hasSuffix("/") { value.removeLast() }
        return value
    }

    /// A header value as it may appear in an answer or a log: printable ASCII only, at most 100 characters.
    private static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(100).filter { (0x21...0x7E).contains($0.value) }))
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
