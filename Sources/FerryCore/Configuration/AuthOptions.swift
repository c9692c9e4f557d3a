#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where tokens come from and what dynamic targets may be (`--token-file`, `--jwt-key`, `--allow-target`, …).
public struct AuthOptions: Sendable, Equatable {
    /// The cookie that may carry the token; nil: cookies are not read.
    public var tokenCookie: String?
    /// A websockify TokenFile, or a folder of them.
    public var tokenFilePath: String?
    /// A folder whose file names are tokens and whose contents are targets (websockify's TokenFileName).
    public var tokenFilenamesPath: String?
    /// A folder of Unix sockets; a token names one (websockify's UnixDomainSocketDirectory).
    public var tokenSocketFolder: String?
    /// The token is the request's host name, without port (websockify's `--host-token`); no other
    /// carrier is read.
    public var tokenFromHost = false
    /// Tokens kept in Redis (`--token-redis`), shared by every replica.
    public var redis: RedisEndpoint?
    /// Extra CA certificates for a `rediss://` Redis (`--token-redis-ca`).
    public var redisCAPath: String?
    /// An HMAC secret, a PEM key, or a JWKS file.
    public var jwtKeyPath: String?
    /// How an HMAC secret in the key file is written.
    public enum SecretEncoding: String, Sendable, Equatable {
        /// The file's bytes are the secret.
        case raw
        /// The file holds the secret base64url-encoded, as websockify's JWTTokenApi reads it (a JWK `k`).
        case base64url
    }
    public var jwtSecretEncoding = SecretEncoding.raw
    public var jwtIssuer: String?
    public var jwtAudience: String?
    /// Close a session with 1008 when its JWT expires.
    public var enforceExpiryOnSession = false
    /// Clock skew tolerated on `exp` and `nbf`.
    public var jwtLeeway: Duration = .seconds(30)
    /// Rules a dynamic target must match; none means every dynamic target is refused.
    public var allowedTargets: [TargetRule] = []
    /// `--allow-target any`: every target a token names is trusted, as websockify does (the token
    /// source is the operator's).
    public var allowsAnyTarget = false
    /// `--basic-auth`: users and passwords the upgrade (and with `--basic-auth-web`, `--web`) needs.
    public var basicCredentials: BasicCredentials?
    /// `--auth-url`: an HTTP service that decides handshakes; nil: none.
    public var callback: AuthCallbackOptions?
    /// Failed token checks from one address before it gets 429, and for how long.
    public var failureLimit = 10
    public var failureWindow: Duration = .seconds(60)

    public init() {}

    public var hasTokenSource: Bool {
        self.tokenFilePath != nil || self.tokenFilenamesPath != nil || self.tokenSocketFolder != nil || self.jwtKeyPath != nil
            || self.redis != nil
    }
}

/// An `--allow-target` rule: `HOST:PORTS` or `CIDR:PORTS`, PORTS being `5900`, `5900-5999` or `*`.
public struct TargetRule: Sendable, Equatable, CustomStringConvertible {
    public enum Hosts: Sendable, Equatable {
        /// A host name, matched by the addresses it resolves to (at check time) and by name.
        case name(String)
        /// An address block: the network bytes and the prefix length.
        case network(bytes: [UInt8], prefix: Int)
    }

    public var hosts: Hosts
    public var ports: ClosedRange<Int>
    public let text: String

    public var description: String { self.text }

    static let expected = "HOST:PORTS or CIDR:PORTS, e.g. 10.0.0.0/8:5900-5999, vnc.internal:5900 or [fd00::/8]:*"

    public static func parse(_ text: String) throws(ConfigurationError) -> TargetRule {
        if text.hasPrefix("unix:") {
            guard text.dropFirst("unix:".count).hasPrefix("/") else {
                throw ConfigurationError(flag: "--allow-target", value: text, problem: "unix socket path must be absolute", expected: "unix:/path, or unix:/folder/ for every socket in it")
            }
            return TargetRule(hosts: .name(text), ports: 1...65535, text: text)
        }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else {
                throw ConfigurationError(flag: "--allow-target", value: text, problem: "IPv6 block needs brackets and a port", expected: Self.expected)
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigurationError(flag: "--allow-target", value: text, problem: "ports are missing", expected: Self.expected)
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        let ports: ClosedRange<Int>
        if portPart == "*" {
            ports = 1...65535
        } else if let dash = portPart.firstIndex(of: "-"), let low = Int(portPart[..<dash]), let high = Int(portPart[portPart.index(after: dash)...]),
            1 <= low, low <= high, high <= 65535
        {
            ports = low...high
        } else if let port = Int(portPart), (1...65535).contains(port) {
            ports = port...port
        } else {
            throw ConfigurationError(flag: "--allow-target", value: text, problem: "bad ports '\(portPart)'", expected: Self.expected)
        }
        guard !hostPart.isEmpty else {
            throw ConfigurationError(flag: "--allow-target", value: text, problem: "host is missing", expected: Self.expected)
        }
        if let slash = hostPart.firstIndex(of: "/") {
            guard let bytes = IPAddressBytes.parse(String(hostPart[..<slash])), let prefix = Int(hostPart[hostPart.index(after: slash)...]),
                (0...(bytes.count * 8)).contains(prefix)
            else {
                throw ConfigurationError(flag: "--allow-target", value: text, problem: "bad address block '\(hostPart)'", expected: Self.expected)
            }
            return TargetRule(hosts: .network(bytes: bytes, prefix: prefix), ports: ports, text: text)
        }
        if let bytes = IPAddressBytes.parse(String(hostPart)) {
            return TargetRule(hosts: .network(bytes: bytes, prefix: bytes.count * 8), ports: ports, text: text)
        }
        return TargetRule(hosts: .name(hostPart.lowercased()), ports: ports, text: text)
    }

    /// True if this rule allows `address` (4 or 16 bytes) on `port`; a `.name` rule needs the addresses
    /// its name resolves to, passed in `nameAddresses`.
    public func allows(address: [UInt8], port: Int, nameAddresses: [[UInt8]] = []) -> Bool {
        guard self.ports.contains(port) else { return false }
        switch self.hosts {
        case .network(let bytes, let prefix):
            return AddressBlock(bytes: bytes, prefix: prefix).contains(address)
        case .name:
            return nameAddresses.contains(address)
        }
    }
}
