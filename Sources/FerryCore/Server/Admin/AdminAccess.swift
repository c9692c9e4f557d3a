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

    /// Whether a request for the sessions API or the page may be answered with this `Host`. Without
    /// a token, only a loopback name or an IP address: a page on another site whose name an attacker
    /// re-points at 127.0.0.1 (DNS rebinding) sends its own name, and must not read the sessions or
    /// end them. With a token, the token is the guard.
    public func allowsHost(_ host: String?) -> Bool {
        guard self.token == nil else { return true }
        guard let host else { return false }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let end = name.firstIndex(of: "]") else { return false }
            return IPAddressBytes.parse(String(name[name.index(after: name.startIndex)..<end])) != nil
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        return name.lowercased() == "localhost" || IPAddressBytes.parse(String(name)) != nil
    }

    static func isLoopback(_ address: ListenAddress) -> Bool {
        guard case .tcp(let host, _) = address.endpoint else { return true }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}
