import Crypto
import NIOHTTP1

/// A token a client presented, and where it was found. Never logged: ``fingerprint`` is what logs,
/// metrics and revocation use.
public struct PresentedToken: Sendable, Equatable {
    /// Where a token can travel, in the order they are looked at.
    public enum Carrier: String, Sendable {
        /// `Sec-WebSocket-Protocol: binary, bearer.TOKEN`: browsers can set it, and it stays out of URLs.
        case subprotocol
        case cookie
        case authorizationHeader
        /// `?token=`: lands in access logs and browser history; last resort, for websockify's clients.
        case query
        /// The host name the client asked for (`--token-from-host`, websockify's `--host-token`).
        case host
    }

    public var value: String
    public var carrier: Carrier

    public init(value: String, carrier: Carrier) {
        self.value = value
        self.carrier = carrier
    }

    /// The first 12 hex digits of the token's SHA-256: enough to follow one token through the logs,
    /// useless for presenting it.
    public var fingerprint: String { Self.fingerprint(of: self.value) }

    public static func fingerprint(of token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).prefix(6).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The subprotocol prefix that carries a token.
    public static let subprotocolPrefix = "bearer."

    /// Finds the token in a handshake: subprotocol, then cookie (if named), then `Authorization:
    /// Bearer`, then the `token` query parameter. First found wins. With `fromHost`, the token is the
    /// `Host` header's host name (port removed, as websockify does) and nothing else is read.
    public static func find(in head: HTTPRequestHead, cookieName: String?, fromHost: Bool = false) -> PresentedToken? {
        if fromHost {
            guard let host = head.headers.first(name: "Host") else { return nil }
            let name = host.hasPrefix("[") ? host.prefix { $0 != "]" } + "]" : host.prefix { $0 != ":" }
            return name.isEmpty ? nil : PresentedToken(value: String(name), carrier: .host)
        }
        for offer in head.headers[canonicalForm: "Sec-WebSocket-Protocol"] where offer.hasPrefix(Self.subprotocolPrefix) {
            let value = offer.dropFirst(Self.subprotocolPrefix.count)
            if !value.isEmpty { return PresentedToken(value: String(value), carrier: .subprotocol) }
        }
        if let cookieName {
            for header in head.headers["Cookie"] {
                for pair in header.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2, parts[0].trimmingSpaces == cookieName {
                        let value = String(parts[1].trimmingSpaces)
                        if !value.isEmpty { return PresentedToken(value: value, carrier: .cookie) }
                    }
                }
            }
        }
        for header in head.headers["Authorization"] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let value = String(parts[1].trimmingSpaces)
                if !value.isEmpty { return PresentedToken(value: value, carrier: .authorizationHeader) }
            }
        }
        if let queryStart = head.uri.firstIndex(of: "?") {
            for pair in head.uri[head.uri.index(after: queryStart)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == "token", let value = PercentEncoding.decode(parts[1], plusIsSpace: true), !value.isEmpty {
                    return PresentedToken(value: value, carrier: .query)
                }
            }
        }
        return nil
    }

}

/// Compares two byte strings in time that depends only on their lengths, not on where they differ.
public func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (a, b) in zip(lhs, rhs) { difference |= a ^ b }
    return difference == 0
}
