/// Where a route's sessions are relayed to.
public enum BackendTarget: Hashable, Sendable, CustomStringConvertible {
    /// A TCP service; a host name is resolved at connect time and every address is tried.
    case tcp(host: String, port: Int)
    /// A TCP service spoken to over TLS, with SNI and (unless the route says otherwise) verification.
    case tls(host: String, port: Int)
    /// A Unix domain stream socket.
    case unix(path: String)
    /// The target comes from the client's token (`--route /connect=dynamic`), checked against `--allow-target`.
    case dynamic

    static let expected = "HOST:PORT, tls://HOST:PORT or unix:/path"

    /// Parses `host:port`, `[v6]:port`, `tls://host:port` or `unix:/path`.
    public static func parse(_ text: String, flag: String, context: String) throws(ConfigurationError) -> BackendTarget {
        if text == "dynamic" { return .dynamic }
        if text.hasPrefix("tls://") {
            guard case .tcp(let host, let port) = try Self.parse(String(text.dropFirst("tls://".count)), flag: flag, context: context) else {
                throw ConfigurationError(flag: flag, value: context, problem: "tls:// needs a host and port", expected: "tls://HOST:PORT")
            }
            return .tls(host: host, port: port)
        }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else {
                throw ConfigurationError(flag: flag, value: context, problem: "unix socket path must be absolute", expected: "unix:/path")
            }
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            guard path.utf8.count <= 107 else {
                throw ConfigurationError(flag: flag, value: context, problem: "unix socket path is longer than 107 bytes")
            }
            return .unix(path: path)
        }
        let (host, port) = try HostPort.parse(text, flag: flag, context: context, what: "target", expected: Self.expected)
        guard !host.isEmpty else {
            throw ConfigurationError(flag: flag, value: context, problem: "host is missing", expected: Self.expected)
        }
        return .tcp(host: host, port: port)
    }

    public var usesTLS: Bool {
        if case .tls = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .tls(let host, let port): return "tls://" + BackendTarget.tcp(host: host, port: port).description
        case .unix(let path): return "unix:\(path)"
        case .dynamic: return "dynamic"
        }
    }
}

/// Splits `host:port` and `[v6]:port`.
enum HostPort {
    static func parse(
        _ text: String,
        flag: String,
        context: String,
        what: String,
        expected: String
    ) throws(ConfigurationError) -> (host: String, port: Int) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ConfigurationError(flag: flag, value: context, problem: "IPv6 address has no closing ]", expected: expected)
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ConfigurationError(flag: flag, value: context, problem: "port is missing", expected: expected)
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigurationError(flag: flag, value: context, problem: "port is missing", expected: expected)
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ConfigurationError(flag: flag, value: context, problem: "IPv6 addresses must be in brackets", expected: "[::1]:PORT")
            }
        }
        guard !portText.isEmpty else {
            throw ConfigurationError(flag: flag, value: context, problem: "port is missing", expected: expected)
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ConfigurationError(flag: flag, value: context, problem: "port '\(portText)' is not a number from 1 to 65535", expected: expected)
        }
        return (String(host), port)
    }
}
