import Crypto
import NIOHTTP1

/// What the `--auth-url` service is told about one handshake, taken once from the request so a
/// revalidation asks again with the same facts. The client's credentials are kept only for these
/// requests; logs see ``credentialFingerprint``.
public struct AuthCallbackRequest: Sendable, Equatable {
    /// Path and query, as the client sent them.
    public var uri: String
    public var method: String
    /// The real client: after PROXY and trusted-proxy handling.
    public var clientAddress: String
    public var host: String?
    /// `wss` when the client came over TLS.
    public var secure: Bool
    public var origin: String?
    public var cookie: String?
    public var authorization: String?
    /// The matched route's path.
    public var route: String
    public var token: String?
    /// From a verified client certificate only.
    public var clientCertificateCN: String?

    public init(
        head: HTTPRequestHead,
        route: String,
        token: String?,
        clientAddress: String,
        clientCertificateCN: String?,
        secure: Bool
    ) {
        self.uri = head.uri
        self.method = "\(head.method)"
        self.clientAddress = clientAddress
        self.host = head.headers.first(name: "Host")
        self.secure = secure
        self.origin = head.headers.first(name: "Origin")
        let cookies = head.headers["Cookie"]
        self.cookie = cookies.isEmpty ? nil : cookies.joined(separator: "; ")
        self.authorization = head.headers.first(name: "Authorization")
        self.route = route
        self.token = token
        self.clientCertificateCN = clientCertificateCN
    }

    /// The headers sent, in the manner of nginx's `auth_request`, plus Ferry's own.
    public var headers: [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("X-Original-URI", self.uri),
            ("X-Original-Method", self.method),
            ("X-Forwarded-For", self.clientAddress),
            ("X-Forwarded-Proto", self.secure ? "wss" : "ws"),
            ("X-Ferry-Route", self.route),
        ]
        if let host { headers.append(("X-Forwarded-Host", host)) }
        if let origin { headers.append(("Origin", origin)) }
        if let cookie { headers.append(("Cookie", cookie)) }
        if let authorization { headers.append(("Authorization", authorization)) }
        if let token { headers.append(("X-Ferry-Token", token)) }
        if let clientCertificateCN { headers.append(("X-Ferry-Client-Cert-CN", clientCertificateCN)) }
        return headers
    }

    /// What a cached decision is filed under: the credentials (token, cookie, Authorization), the
    /// route and the client address, hashed so the cache holds no credential.
    public var cacheKey: AuthDecisionCache.Key {
        var hash = SHA256()
        for part in [self.token, self.cookie, self.authorization, self.route, self.clientAddress] {
            let bytes = Array((part ?? "").utf8)
            // Length-prefixed, so moving bytes between parts gives another key.
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: bytes)
            hash.update(data: [part == nil ? 0 : 1])
        }
        return AuthDecisionCache.Key(digest: Array(hash.finalize()))
    }

    /// A fingerprint of whichever credential the client sent, for logs (never the value).
    public var credentialFingerprint: String {
        guard let credential = self.token ?? self.cookie ?? self.authorization else { return "-" }
        return PresentedToken.fingerprint(of: credential)
    }
}
