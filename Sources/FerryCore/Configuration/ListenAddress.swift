/// An address the relay accepts connections on.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    /// 0 asks the system for a free port (used by tests).
    public var port: Int
    /// `ADDR:PORT,proxy-protocol`: every connection must start with a PROXY header from a trusted proxy.
    public var proxyProtocol = false

    public init(host: String, port: Int, proxyProtocol: Bool = false) {
        self.host = host
        self.port = port
        self.proxyProtocol = proxyProtocol
    }

    static let expected = "ADDR:PORT, e.g. 0.0.0.0:6080, [::]:6080 or localhost:6080"

    /// Parses `ADDR:PORT`, `[v6]:PORT` or, with `allowBarePort`, `PORT` (all interfaces, as websockify does).
    public static func parse(_ text: String, flag: String = "--listen", allowBarePort: Bool = false) throws(ConfigurationError) -> ListenAddress {
        if let comma = text.firstIndex(of: ",") {
            let option = text[text.index(after: comma)...]
            guard option == "proxy-protocol" else {
                throw ConfigurationError(flag: flag, value: text, problem: "unknown listener option '\(option)'", expected: "ADDR:PORT or ADDR:PORT,proxy-protocol")
            }
            var address = try Self.parse(String(text[..<comma]), flag: flag, allowBarePort: allowBarePort)
            address.proxyProtocol = true
            return address
        }
        if allowBarePort, let port = Int(text) {
            guard (0...65535).contains(port) else {
                throw ConfigurationError(flag: flag, value: text, problem: "port is not a number from 0 to 65535", expected: Self.expected)
            }
            return ListenAddress(host: "0.0.0.0", port: port)
        }
        let (host, port) = try HostPort.parse(text, flag: flag, context: text, what: "listen address", expected: Self.expected)
        return ListenAddress(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}
