import NIOCore

/// Why a session could not be opened, worded for the user (`ferry connect: <description>`), and the
/// exit status each reason gets, so a script can tell them apart.
public enum ConnectFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// No TCP connection: refused, unreachable, a name that does not resolve.
    case unreachable(address: String, reason: String)
    /// TCP connect, TLS and upgrade took longer than `--connect-timeout`.
    case timedOut(address: String, after: TimeAmount)
    /// The TLS handshake failed: most often the relay's certificate is not trusted or names another host.
    case tlsFailed(address: String, reason: String)
    /// The relay answered the upgrade with another status than 101.
    case refused(status: Int, message: String)
    /// The answer was not a WebSocket upgrade (a 101 without the right accept key, not HTTP at all, …).
    case notWebSocket(reason: String)
    /// No TCP connection to the proxy (`proxy` is its `host:port`).
    case proxyUnreachable(proxy: String, reason: String)
    /// The proxy answered CONNECT with a status other than 2xx; 407 (and tinyproxy's 401) is
    /// ``proxyCredentials(proxy:status:given:source:)``.
    case proxyRefused(proxy: String, target: String, status: Int, reason: String)
    /// The proxy wants credentials: none were given (`given` false) or it refused them. `source` is
    /// where they go: `--proxy` or the environment variable the proxy came from.
    case proxyCredentials(proxy: String, status: Int, given: Bool, source: String)
    /// The proxy's answer to CONNECT was not HTTP, too large, or never came.
    case proxyBroken(proxy: String, reason: String)

    public var exitStatus: ConnectExitStatus {
        switch self {
        case .unreachable, .timedOut, .notWebSocket: return .couldNotConnect
        // The relay was never reached: a proxy's refusal is not the relay's (status 5).
        case .proxyUnreachable, .proxyRefused, .proxyCredentials, .proxyBroken: return .couldNotConnect
        case .tlsFailed: return .tlsFailed
        case .refused: return .refused
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let address, let reason):
            return "could not connect to \(address): \(reason)"
        case .timedOut(let address, let after):
            return "could not connect to \(address): no WebSocket session within \(after.nanoseconds / 1_000_000) ms (--connect-timeout)"
        case .tlsFailed(let address, let reason):
            return "TLS handshake with \(address) failed: \(reason)"
        case .refused(let status, let message):
            return "the relay refused the session: \(status) \(message)"
        case .notWebSocket(let reason):
            return "the server did not open a WebSocket session: \(reason)"
        case .proxyUnreachable(let proxy, let reason):
            return "could not connect to proxy \(proxy): \(reason)"
        case .proxyRefused(let proxy, let target, let status, let reason):
            return "the proxy \(proxy) refused CONNECT to \(target): \(status) \(reason)"
        case .proxyCredentials(let proxy, let status, let given, let source):
            let example = source == "--proxy" ? "--proxy http://user:password@\(proxy)" : "\(source)=http://user:password@\(proxy)"
            if given {
                return "the proxy \(proxy) did not accept the credentials in \(source) (\(status)); check the user and password in \(example)"
            }
            return "the proxy \(proxy) requires credentials (\(status)); give them in \(example)"
        case .proxyBroken(let proxy, let reason):
            return "the proxy \(proxy) did not open a tunnel: \(reason)"
        }
    }
}

/// The exit statuses of `ferry connect`, listed in its `--help`.
public enum ConnectExitStatus: Int32, Sendable, CaseIterable {
    /// The session ended with close code 1000 or 1001.
    case ended = 0
    /// The session ended otherwise: another close code, or the connection was lost.
    case endedAbnormally = 1
    /// A flag's value is wrong (as for the relay).
    case badFlag = 2
    case couldNotConnect = 3
    case tlsFailed = 4
    /// The relay answered the upgrade with another status than 101.
    case refused = 5

    public var meaning: String {
        switch self {
        case .ended: return "the session ended with close code 1000 or 1001"
        case .endedAbnormally: return "it ended otherwise: another close code, or the connection lost"
        case .badFlag: return "a flag's value is wrong"
        case .couldNotConnect: return "could not connect (or the proxy refused), or no WebSocket answer"
        case .tlsFailed: return "the TLS handshake failed (e.g. the certificate is not trusted)"
        case .refused: return "the relay refused the session (an HTTP status other than 101)"
        }
    }
}
