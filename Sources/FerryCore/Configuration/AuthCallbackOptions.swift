import Foundation
import NIOCore

/// `--auth-url` and its companions: an HTTP service that decides each handshake, as nginx's
/// `auth_request` does, for routes with `auth=url` and for `dynamic` routes no token source decides.
public struct AuthCallbackOptions: Sendable, Equatable {
    /// The URL as given; `{token}` (or websockify's `%s`) stands for the percent-encoded token.
    public var url: String
    /// Each request's limit (`--auth-timeout`); a handshake's request also ends with its budget.
    public var timeout: TimeAmount = .seconds(2)
    /// The longest an answer's `Cache-Control: max-age` is honoured (`--auth-cache-max`); 0: no cache.
    public var cacheMax: TimeAmount = .seconds(60)
    /// A refusal is kept at most this long, so a user who was just granted access is not kept out.
    public var refusalCacheMax: TimeAmount = .seconds(5)
    /// Live sessions are asked again this often (`--auth-revalidate`); nil: never.
    public var revalidate: TimeAmount?
    /// Extra CA certificates for an `https://` service (`--auth-ca`), besides the system's.
    public var caPath: String?
    /// Requests in flight at once; beyond it handshakes get 503 rather than queue behind a slow service.
    public var maxConcurrentRequests = 256
    /// Decisions remembered at once.
    public var maxCacheEntries = 10_000

    public static let placeholders = ["{token}", "%s"]
    static let expected = "an http:// or https:// URL, e.g. https://auth.internal/ferry?token={token}"

    public init(url: String) {
        self.url = url
    }

    /// Checks `--auth-url`: http or https, a host, and nothing that could point the request elsewhere.
    public static func parse(_ text: String) throws(ConfigurationError) -> AuthCallbackOptions {
        var probe = text
        for placeholder in Self.placeholders { probe = probe.replacingOccurrences(of: placeholder, with: "t") }
        guard let components = URLComponents(string: probe), let scheme = components.scheme?.lowercased() else {
            throw ConfigurationError(flag: "--auth-url", value: text, problem: "not a URL", expected: Self.expected)
        }
        guard scheme == "http" || scheme == "https" else {
            throw ConfigurationError(flag: "--auth-url", value: text, problem: "scheme '\(scheme)' is not http or https", expected: Self.expected)
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError(flag: "--auth-url", value: text, problem: "the host is missing", expected: Self.expected)
        }
        guard components.user == nil, components.password == nil else {
            throw ConfigurationError(flag: "--auth-url", value: text, problem: "credentials in the URL would be logged", expected: "a URL without user:password@; the service can check X-Forwarded-For or a client certificate instead")
        }
        let authority = Self.hostPart(of: text)
        guard !Self.placeholders.contains(where: { authority.contains($0) }) else {
            throw ConfigurationError(flag: "--auth-url", value: text, problem: "the token may not choose the host", expected: "{token} in the path or the query")
        }
        return AuthCallbackOptions(url: text)
    }

    /// The text between `://` and the first `/`, `?` or `#`.
    private static func hostPart(of url: String) -> Substring {
        guard let start = url.range(of: "://")?.upperBound else { return "" }
        let rest = url[start...]
        return rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    }

    /// The URL with the token in place of each placeholder, percent-encoded (an empty string without one).
    public func url(token: String?) -> String {
        let encoded = (token ?? "").addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? ""
        var url = self.url
        for placeholder in Self.placeholders { url = url.replacingOccurrences(of: placeholder, with: encoded) }
        return url
    }

    /// RFC 3986's unreserved characters: everything else in a token is escaped.
    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
}
