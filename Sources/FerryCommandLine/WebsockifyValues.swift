import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How websockify's values become Ferry's: token plugins, listen addresses, targets, seconds and paths.
extension WebsockifyCommandLine {
    static func tokenPlugin(_ plugin: String, source: String) throws(ConfigurationError) -> [String] {
        switch Self.shortName(plugin, module: "websockify.token_plugins.") {
        case "TokenFile", "ReadOnlyTokenFile":
            return ["--token-file", source]
        case "TokenFileName":
            return ["--token-filenames", source]
        case "UnixDomainSocketDirectory":
            return ["--token-sockets", Self.absolute(source)]
        case "JWTTokenApi":
            return ["--jwt-key", source, "--jwt-secret-encoding", "base64url"]
        case "JSONTokenApi":
            // websockify GETs the source with the token in place of %s and reads {"host": …, "port": …}.
            return ["--auth-url", source]
        case "BaseTokenAPI":
            throw ConfigurationError(flag: "--token-plugin", value: plugin, problem: "BaseTokenAPI's answer is read by a Python subclass, which cannot run in Ferry", instead: "have the service answer JSON {\"host\": …, \"port\": …} and use --token-plugin JSONTokenApi")
        case "TokenRedis":
            return ["--token-redis", try Self.redisURL(source)]
        default:
            throw ConfigurationError(flag: "--token-plugin", value: plugin, problem: "Python plugins cannot run in Ferry", instead: "use TokenFile, ReadOnlyTokenFile, TokenFileName, JWTTokenApi, JSONTokenApi, TokenRedis or UnixDomainSocketDirectory")
        }
    }

    /// TokenRedis's `host[:port[:db[:password[:namespace]]]]` (a field in double quotes may hold
    /// colons; an empty field is its default) as a `--token-redis` URL.
    static func redisURL(_ source: String) throws(ConfigurationError) -> String {
        let fields = Self.sourceFields(source)
        let expected = "host[:port[:db[:password[:namespace]]]], e.g. redis.internal:6379:0:secret:ferry"
        let shown = RedisEndpoint.redactedSource(source)
        guard fields.count <= 5, let host = fields.first, !host.isEmpty else {
            throw ConfigurationError(flag: "--token-source", value: shown, problem: "not a TokenRedis source", expected: expected)
        }
        func field(_ index: Int) -> String { index < fields.count ? fields[index] : "" }
        let port = field(1).isEmpty ? 6379 : Int(field(1)) ?? 0
        guard (1...65535).contains(port) else {
            throw ConfigurationError(flag: "--token-source", value: shown, problem: "the port '\(field(1))' is not a port number", expected: expected)
        }
        let database = field(2).isEmpty ? 0 : Int(field(2)) ?? -1
        guard database >= 0 else {
            throw ConfigurationError(flag: "--token-source", value: shown, problem: "the database '\(field(2))' is not a number", expected: expected)
        }
        return RedisEndpoint.url(host: host, port: port, database: database, password: field(3), namespace: field(4))
    }

    /// websockify's split of a plugin source at colons, where a whole field in double quotes keeps its colons.
    static func sourceFields(_ source: String) -> [String] {
        var fields: [String] = []
        var rest = source[...]
        while true {
            if rest.hasPrefix("\""), let close = rest.dropFirst().firstIndex(of: "\""), close > rest.index(after: rest.startIndex) {
                let after = rest[rest.index(after: close)...]
                if after.isEmpty || after.hasPrefix(":") {
                    fields.append(String(rest[rest.index(after: rest.startIndex)..<close]))
                    if after.isEmpty { return fields }
                    rest = after.dropFirst()
                    continue
                }
            }
            guard let colon = rest.firstIndex(of: ":") else {
                fields.append(String(rest))
                return fields
            }
            fields.append(String(rest[..<colon]))
            rest = rest[rest.index(after: colon)...]
        }
    }

    /// `TokenFile` or `websockify.token_plugins.TokenFile` → `TokenFile`; another module's class stays whole.
    static func shortName(_ plugin: String, module: String) -> String {
        plugin.hasPrefix(module) ? String(plugin.dropFirst(module.count)) : plugin
    }

    /// websockify's `[host:]port`: the last colon splits, brackets are stripped, no host means every
    /// interface (IPv6 ones too with `--prefer-ipv6`).
    static func listenAddress(_ text: String, preferIPv6: Bool) throws(ConfigurationError) -> String {
        var host = ""
        var portText = text
        if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon].trimming { $0 == "[" || $0 == "]" })
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError(flag: "source_port", value: text, problem: "not a port number", expected: "[source_addr:]source_port, e.g. 6080 or 127.0.0.1:6080")
        }
        if host.isEmpty { host = preferIPv6 ? "::" : "0.0.0.0" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// websockify's `host:port` target, brackets optional around IPv6.
    static func target(_ text: String) throws(ConfigurationError) -> String {
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigurationError(flag: "target", value: text, problem: "no port", expected: "target_addr:target_port, e.g. localhost:5900")
        }
        let host = String(text[..<colon].trimming { $0 == "[" || $0 == "]" })
        let portText = text[text.index(after: colon)...]
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ConfigurationError(flag: "target", value: text, problem: "'\(portText)' is not a port number", expected: "target_addr:target_port, e.g. localhost:5900")
        }
        guard !host.isEmpty else {
            throw ConfigurationError(flag: "target", value: text, problem: "no host", expected: "target_addr:target_port, e.g. localhost:5900")
        }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func seconds(_ flag: String, _ text: String?) throws(ConfigurationError) -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), value >= 0 else {
            throw ConfigurationError(flag: flag, value: text, problem: "not a whole number of seconds", expected: "\(flag) 30")
        }
        return value
    }

    /// websockify makes these paths absolute before it may change folder; Ferry never changes folder,
    /// but the absolute path also tells the reader of the logged command where the file is.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let folder = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (folder.hasSuffix("/") ? folder : folder + "/") + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }
}
