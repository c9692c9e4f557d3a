/// Which proxy, if any, a session to the relay goes through: a pure function of the relay's URL, the
/// flags and the environment (given, not read here, so tests pass their own).
///
/// The rules are curl's:
/// - `--proxy URL` is used for every session; the environment is not read, `NO_PROXY` included.
/// - `--no-proxy` ignores the proxy environment variables.
/// - Otherwise `wss://` uses `https_proxy` or `HTTPS_PROXY`, and `ws://` `http_proxy` or
///   `HTTP_PROXY`; the lower-case name wins when both are set. An empty value is unset.
///   `ALL_PROXY` is not read: it often names a SOCKS proxy, which Ferry does not speak.
/// - `no_proxy` (or `NO_PROXY`, lower-case first) lists hosts reached directly: comma-separated;
///   `*` alone means every host; a name matches itself and its subdomains (`example.com` and
///   `.example.com` both match `relay.example.com`); an entry may end in `:PORT` to match that port
///   only; an IP address matches the same address, or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
/// - Loopback hosts are not special: like curl (and unlike Go), `localhost` and `127.0.0.1` go
///   through the proxy unless `NO_PROXY` names them.
public enum ProxySelection {
    /// The proxy for `url`, or nil to connect directly. Throws when `--proxy` or the variable that
    /// applies holds something other than an HTTP proxy URL.
    public static func proxy(for url: WebSocketURL, flag: String?, noProxy: Bool, environment: [String: String]) throws(ConfigurationError) -> ConnectProxy? {
        if let flag {
            guard !noProxy else {
                throw ConfigurationError(flag: "--no-proxy", value: "", problem: "given with --proxy", expected: "one of --proxy URL and --no-proxy")
            }
            return try ConnectProxy.parse(flag, source: "--proxy")
        }
        guard !noProxy else { return nil }
        let names = url.secure ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy", "HTTP_PROXY"]
        guard case let (name, value)? = Self.variable(names, in: environment) else { return nil }
        if case let (_, list)? = Self.variable(["no_proxy", "NO_PROXY"], in: environment), Self.bypasses(host: url.host, port: url.port, noProxy: list) {
            return nil
        }
        return try ConnectProxy.parse(value, source: name)
    }

    /// The first of `names` set to a non-empty value.
    private static func variable(_ names: [String], in environment: [String: String]) -> (String, String)? {
        for name in names {
            if let value = environment[name]?.trimmingSpaces, !value.isEmpty { return (name, String(value)) }
        }
        return nil
    }

    /// True if a `NO_PROXY` list names `host` (a name or an IP address, IPv6 without brackets) at `port`.
    public static func bypasses(host: String, port: Int, noProxy list: String) -> Bool {
        let name = Self.normalized(host)
        let address = IPAddressBytes.parse(name)
        for rawEntry in list.split(separator: ",") {
            var entry = Substring(rawEntry.trimmingSpaces)
            if entry == "*" { return true }
            if entry.isEmpty { continue }
            if case let (withoutPort, entryPort)? = Self.splitPort(entry) {
                guard entryPort == port else { continue }
                entry = withoutPort
            }
            if entry.hasPrefix("[") && entry.hasSuffix("]") { entry = entry.dropFirst().dropLast() }
            if let address {
                if Self.matches(address, entry) { return true }
                continue
            }
            let domain = Self.normalized(String(entry.hasPrefix(".") ? entry.dropFirst() : entry))
            if domain.isEmpty { continue }
            if name == domain || name.hasSuffix("." + domain) { return true }
        }
        return false
    }

    /// Lower case, without a trailing dot.
    private static func normalized(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// `entry` and its port, if it ends in one: `host:443`, `[::1]:443`, `10.0.0.1:443`. A bare IPv6
    /// address (two colons or more) has no port.
    private static func splitPort(_ entry: Substring) -> (Substring, Int)? {
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]"), entry[entry.index(after: close)...].hasPrefix(":") else { return nil }
            let portText = entry[entry.index(close, offsetBy: 2)...]
            return Int(portText).map { (entry[...close], $0) }
        }
        guard entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") else { return nil }
        return Int(entry[entry.index(after: colon)...]).map { (entry[..<colon], $0) }
    }

    /// An IP address against an entry: the same address, or a CIDR range (``AddressBlock``).
    private static func matches(_ address: [UInt8], _ entry: Substring) -> Bool {
        AddressBlock(String(entry))?.contains(address) ?? false
    }
}
