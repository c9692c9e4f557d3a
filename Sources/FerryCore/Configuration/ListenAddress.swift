/// An address the relay accepts connections on: a TCP `ADDR:PORT`, or a Unix socket
/// (`unix:/path`, websockify's `--unix-listen`).
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// Where the listener is bound.
    public enum Endpoint: Hashable, Sendable {
        /// Port 0 asks the system for a free port (used by tests).
        case tcp(host: String, port: Int)
        /// An absolute path; the socket file is given `mode` (permission bits) once bound.
        case unix(path: String, mode: UInt16)
    }

    public var endpoint: Endpoint
    /// `,proxy-protocol`: every connection must start with a PROXY header from a trusted proxy (on a
    /// Unix socket, whoever may connect is trusted: the socket's mode decides who that is).
    public var proxyProtocol = false

    /// The file mode a Unix listener gets unless `,mode=` says otherwise (websockify's default).
    public static let defaultUnixMode: UInt16 = 0o600
    /// `sun_path` holds 108 bytes, the terminating NUL included.
    public static let maxUnixPathBytes = 107

    public init(host: String, port: Int, proxyProtocol: Bool = false) {
        self.endpoint = .tcp(host: host, port: port)
        self.proxyProtocol = proxyProtocol
    }

    public init(unixPath: String, mode: UInt16 = ListenAddress.defaultUnixMode, proxyProtocol: Bool = false) {
        self.endpoint = .unix(path: unixPath, mode: mode)
        self.proxyProtocol = proxyProtocol
    }

    /// The TCP host; empty for a Unix listener.
    public var host: String {
        if case .tcp(let host, _) = self.endpoint { return host }
        return ""
    }

    /// The TCP port; 0 for a Unix listener.
    public var port: Int {
        if case .tcp(_, let port) = self.endpoint { return port }
        return 0
    }

    /// The socket path of a Unix listener; nil for TCP.
    public var unixPath: String? {
        if case .unix(let path, _) = self.endpoint { return path }
        return nil
    }

    /// The file mode of a Unix listener's socket; nil for TCP.
    public var unixMode: UInt16? {
        if case .unix(_, let mode) = self.endpoint { return mode }
        return nil
    }

    static let expected = "ADDR:PORT, e.g. 0.0.0.0:6080, [::]:6080 or localhost:6080"
    static let expectedUnix = "unix:/ABSOLUTE/PATH[,mode=0600], e.g. unix:/run/ferry.sock,mode=0660"

    /// Parses `ADDR:PORT`, `[v6]:PORT`, `unix:/path` or, with `allowBarePort`, `PORT` (all interfaces, as
    /// websockify does), followed by options: `,proxy-protocol`, and for Unix sockets `,mode=OCTAL`.
    /// `allowUnix: false` refuses `unix:` (listeners that cannot be Unix sockets, such as `--admin-listen`).
    /// A Unix path cannot hold a comma: what follows one is read as an option.
    public static func parse(
        _ text: String,
        flag: String = "--listen",
        allowBarePort: Bool = false,
        allowUnix: Bool = true
    ) throws(ConfigurationError) -> ListenAddress {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let base = String(parts[0])
        let isUnix = base.hasPrefix("unix:")
        var address: ListenAddress
        if isUnix {
            guard allowUnix else {
                throw ConfigurationError(flag: flag, value: text, problem: "cannot be a Unix socket", expected: Self.expected)
            }
            address = ListenAddress(unixPath: try Self.unixPath(String(base.dropFirst("unix:".count)), flag: flag, text: text))
        } else {
            address = try Self.parseTCP(base, flag: flag, allowBarePort: allowBarePort)
        }
        var seen: Set<Substring> = []
        for option in parts.dropFirst() {
            let name = option.prefix { $0 != "=" }
            guard seen.insert(name).inserted else {
                throw ConfigurationError(flag: flag, value: text, problem: "listener option '\(name)' is given twice", expected: Self.expectedWithOptions(unix: isUnix))
            }
            if option == "proxy-protocol" {
                address.proxyProtocol = true
            } else if isUnix, option.hasPrefix("mode=") {
                address.endpoint = .unix(path: address.unixPath ?? "", mode: try Self.mode(option.dropFirst("mode=".count), flag: flag, text: text))
            } else if option.hasPrefix("mode=") {
                throw ConfigurationError(flag: flag, value: text, problem: "mode= applies only to Unix sockets", expected: "unix:/PATH,mode=0660")
            } else {
                throw ConfigurationError(flag: flag, value: text, problem: "unknown listener option '\(option)'", expected: Self.expectedWithOptions(unix: isUnix))
            }
        }
        return address
    }

    private static func expectedWithOptions(unix: Bool) -> String {
        unix ? "unix:/PATH[,mode=0600][,proxy-protocol]" : "ADDR:PORT or ADDR:PORT,proxy-protocol"
    }

    private static func parseTCP(_ text: String, flag: String, allowBarePort: Bool) throws(ConfigurationError) -> ListenAddress {
        if allowBarePort, let port = Int(text) {
            guard (0...65535).contains(port) else {
                throw ConfigurationError(flag: flag, value: text, problem: "port is not a number from 0 to 65535", expected: Self.expected)
            }
            return ListenAddress(host: "0.0.0.0", port: port)
        }
        let (host, port) = try HostPort.parse(text, flag: flag, context: text, what: "listen address", expected: Self.expected)
        return ListenAddress(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    private static func unixPath(_ path: String, flag: String, text: String) throws(ConfigurationError) -> String {
        guard !path.isEmpty else {
            throw ConfigurationError(flag: flag, value: text, problem: "the socket path is missing", expected: Self.expectedUnix)
        }
        guard path.hasPrefix("/") else {
            throw ConfigurationError(flag: flag, value: text, problem: "the socket path is not absolute", expected: Self.expectedUnix)
        }
        guard !path.hasSuffix("/") else {
            throw ConfigurationError(flag: flag, value: text, problem: "the socket path names a folder", expected: Self.expectedUnix)
        }
        guard path.utf8.count <= Self.maxUnixPathBytes else {
            throw ConfigurationError(
                flag: flag,
                value: text,
                problem: "the socket path is \(path.utf8.count) bytes long, more than the \(Self.maxUnixPathBytes) a Unix socket allows",
                expected: "a shorter absolute path"
            )
        }
        return path
    }

    /// `600`, `0660`: octal permission bits, at most 0777 (set-id and sticky bits mean nothing on a socket).
    private static func mode(_ text: Substring, flag: String, text whole: String) throws(ConfigurationError) -> UInt16 {
        guard (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }), let mode = UInt16(text, radix: 8) else {
            throw ConfigurationError(flag: flag, value: whole, problem: "mode '\(text)' is not 3 or 4 octal digits", expected: "mode=0600, mode=0660 or mode=0666")
        }
        guard mode <= 0o777 else {
            throw ConfigurationError(flag: flag, value: whole, problem: "mode '\(text)' has bits above 0777, which mean nothing on a socket", expected: "mode=0600, mode=0660 or mode=0666")
        }
        return mode
    }

    /// `0.0.0.0:6080`, `[::1]:6080` or `unix:/run/ferry.sock` (the mode is not shown).
    public var description: String {
        switch self.endpoint {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path, _): return "unix:\(path)"
        }
    }
}
