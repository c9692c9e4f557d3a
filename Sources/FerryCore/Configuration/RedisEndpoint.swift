/// Where tokens are kept in Redis: `--token-redis redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?namespace=NS]`,
/// `rediss://` for TLS. A token is the key `NS:TOKEN` (or `TOKEN` without a namespace).
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var usesTLS: Bool
    /// An ACL user (Redis 6+); nil authenticates as the default user.
    public var user: String?
    public var password: String?
    public var database: Int
    public var namespace: String?

    public init(host: String, port: Int = 6379, usesTLS: Bool = false, user: String? = nil, password: String? = nil, database: Int = 0, namespace: String? = nil) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
        self.user = user
        self.password = password
        self.database = database
        self.namespace = namespace
    }

    static let flag = "--token-redis"
    static let expected = "redis://[:PASSWORD@]HOST[:PORT][/DB][?namespace=NS] or rediss://… for TLS, e.g. redis://:secret@10.0.0.5:6379/0?namespace=ferry"

    /// The key a token is kept under.
    public func key(for token: String) -> String {
        self.namespace.map { "\($0):\(token)" } ?? token
    }

    /// The URL with the password replaced by `***`, for logs and errors.
    public var description: String {
        var text = (self.usesTLS ? "rediss://" : "redis://")
        if self.user != nil || self.password != nil {
            text += (self.user.map(Self.encode) ?? "") + (self.password == nil ? "" : ":***") + "@"
        }
        text += (self.host.contains(":") ? "[\(self.host)]" : self.host) + ":\(self.port)/\(self.database)"
        if let namespace { text += "?namespace=" + Self.encode(namespace) }
        return text
    }

    public static func parse(_ text: String) throws(ConfigurationError) -> RedisEndpoint {
        let shown = Self.redact(text)
        func failure(_ problem: String) -> ConfigurationError {
            ConfigurationError(flag: Self.flag, value: shown, problem: problem, expected: Self.expected)
        }
        var rest: Substring
        var endpoint = RedisEndpoint(host: "")
        if text.hasPrefix("redis://") {
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("rediss://") {
            rest = text.dropFirst("rediss://".count)
            endpoint.usesTLS = true
        } else {
            throw failure("not a redis:// or rediss:// URL")
        }
        if let question = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0] == "namespace" else {
                    throw failure("unknown query parameter '\(parts[0])' (only namespace is read)")
                }
                guard let namespace = PercentEncoding.decode(parts[1], plusIsSpace: false), !namespace.isEmpty else {
                    throw failure("the namespace is empty or badly escaped")
                }
                endpoint.namespace = namespace
            }
            rest = rest[..<question]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let user = PercentEncoding.decode(parts[0], plusIsSpace: false),
                let password = parts.count == 2 ? PercentEncoding.decode(parts[1], plusIsSpace: false) : ""
            else {
                throw failure("the user or password is badly %-escaped")
            }
            endpoint.user = user.isEmpty ? nil : user
            endpoint.password = password.isEmpty ? nil : password
            if parts.count == 1 {
                // `redis://secret@host` is how many clients write a password alone.
                endpoint.user = nil
                endpoint.password = user.isEmpty ? nil : user
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let database = rest[rest.index(after: slash)...]
            if !database.isEmpty {
                guard let number = Int(database), number >= 0, number <= Int(Int32.max) else {
                    throw failure("the database '\(database)' is not a number")
                }
                endpoint.database = number
            }
            rest = rest[..<slash]
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw failure("the IPv6 address has no closing ]") }
            endpoint.host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if !rest.isEmpty && !rest.hasPrefix(":") { throw failure("unexpected text after the IPv6 address") }
        } else if let colon = rest.firstIndex(of: ":") {
            endpoint.host = String(rest[..<colon])
            rest = rest[colon...]
        } else {
            endpoint.host = String(rest)
            rest = ""
        }
        if rest.hasPrefix(":") {
            guard let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
                throw failure("the port '\(rest.dropFirst())' is not a port number")
            }
            endpoint.port = port
        }
        guard !endpoint.host.isEmpty else { throw failure("the host is missing") }
        return endpoint
    }

    /// A URL as the user wrote it with any password replaced by `***` (also for URLs that do not parse).
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text[schemeEnd.upperBound...].lastIndex(of: "@") else { return text }
        let credentials = text[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else {
            return text[..<schemeEnd.upperBound] + (credentials.isEmpty ? "" : "***") + text[at...]
        }
        return text[..<schemeEnd.upperBound] + credentials[..<colon] + ":***" + text[at...]
    }

    /// The URL for websockify's `TokenRedis` source fields, each %-escaped.
    public static func url(host: String, port: Int, database: Int, password: String?, namespace: String?) -> String {
        var text = "redis://"
        if let password, !password.isEmpty { text += ":" + Self.encode(password) + "@" }
        text += (host.contains(":") ? "[\(host)]" : host) + ":\(port)/\(database)"
        if let namespace, !namespace.isEmpty { text += "?namespace=" + Self.encode(namespace) }
        return text
    }

    /// %-escapes everything but letters, digits and `-._~`.
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if (byte < 0x80 && (scalar.properties.isAlphabetic || ("0"..."9").contains(Character(scalar)))) || "-._~".utf8.contains(byte) {
                out.unicodeScalars.append(scalar)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

extension RedisEndpoint {
    /// websockify's TokenRedis source `host:port:db:password:namespace` with the password replaced by
    /// `***`, for errors.
    public static func redactedSource(_ source: String) -> String {
        var fields = source.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if fields.count >= 4, !fields[3].isEmpty { fields[3] = "***" }
        return fields.joined(separator: ":")
    }
}
