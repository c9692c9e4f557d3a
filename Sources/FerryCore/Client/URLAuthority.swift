/// The `HOST[:PORT]` or `[IPv6][:PORT]` part of a URL. The relay's URL and a proxy's URL read it by
/// the same rules, with the same errors: brackets around IPv6 addresses, a port from 1 to 65535, and
/// only printable ASCII in the host (it goes into a `Host` header or a `CONNECT` line as it is).
struct URLAuthority: Equatable {
    var host: String
    var port: Int

    /// - Parameters:
    ///   - flag, value, expected: what a ``ConfigurationError`` names.
    ///   - bracketed: an example with an IPv6 address, for the errors about brackets.
    static func parse(
        _ authority: Substring,
        defaultPort: Int,
        flag: String,
        value: String,
        expected: String,
        bracketed: String
    ) throws(ConfigurationError) -> URLAuthority {
        var host = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ConfigurationError(flag: flag, value: value, problem: "IPv6 address has no closing ]", expected: bracketed)
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw ConfigurationError(flag: flag, value: value, problem: "unexpected text after the IPv6 address", expected: bracketed)
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            guard !host.contains(":") else {
                throw ConfigurationError(flag: flag, value: value, problem: "IPv6 addresses must be in brackets", expected: bracketed)
            }
        }
        guard !host.isEmpty else {
            throw ConfigurationError(flag: flag, value: value, problem: "has no host", expected: expected)
        }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigurationError(flag: flag, value: value, problem: "has spaces or characters that must be percent-encoded in the host", expected: expected)
        }
        guard let portText else { return URLAuthority(host: String(host), port: defaultPort) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ConfigurationError(flag: flag, value: value, problem: "port '\(portText)' is not a number from 1 to 65535", expected: expected)
        }
        return URLAuthority(host: String(host), port: port)
    }
}
