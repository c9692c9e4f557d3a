/// Who may use the admin port (`--admin-listen`, `--admin-token`).
///
/// With a token, every request needs `Authorization: Bearer TOKEN`. Without one, the port answers
/// `/metrics` and `/healthz` as it always has, but the sessions API (it shows who is connected and
/// ends sessions) only when the port is bound to a loopback address: only this host can reach it.
/// On any other address it needs the token. Refusing to start instead would stop every deployment
/// that scrapes `/metrics` from a pod address the day it upgrades.
public struct AdminAccess: Sendable {
    /// `--admin-token`'s secret; nil: none.
    public var token: String?
    /// The admin listener is bound to a loopback address.
    public var loopbackOnly: Bool

    public init(token: String? = nil, loopbackOnly: Bool = true) {
        self.token = token
        self.loopbackOnly = loopbackOnly
    }

    /// Access for a listener on `address`.
    public init(token: String?, address: ListenAddress) {
        self.token = token
        self.loopbackOnly = Self.isLoopback(address)
    }

    /// The sessions API is served: a token guards the port, or only this host can reach it.
    public var servesSessions: Bool { self.token != nil || self.loopbackOnly }

    /// Whether a request with this `Authorization` header may be answered (constant time in the
    /// token's bytes).
    public func allows(authorization: String?) -> Bool {
        guard let token = self.token else { return true }
        guard let authorization else { return false }
        let prefix = "bearer "
        guard authorization.count > prefix.count, authorization.prefix(prefix.count).lowercased() == prefix else { return false }
        let presented = authorization.dropFirst(prefix.count).drop(while: { $0 == " " })
        return constantTimeEquals(Array(token.utf8), Array(presented.utf8))
    }

    static func isLoopback(_ address: ListenAddress) -> Bool {
        guard case .tcp(let host, _) = address.endpoint else { return true }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}
