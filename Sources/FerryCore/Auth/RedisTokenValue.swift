import Foundation

/// What a token's key holds, as websockify's `TokenRedis` writes it: `host:port`, JSON
/// `{"host": "host:port"}` (or `{"host": "host", "port": 5900}`), and Ferry's `unix:/path` (or
/// websockify's `unix_socket:/path`) and `tls://host:port`. Surrounding whitespace is ignored, as
/// websockify does.
enum RedisTokenValue {
    /// The target, or nil for a value that names none.
    static func target(_ text: String) -> BackendTarget? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var targetText = TokenFileFormat.normalizedTarget(trimmed[...])
        if trimmed.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                let host = object["host"] as? String
            else { return nil }
            if let port = object["port"] {
                guard let number = (port as? Int) ?? (port as? String).flatMap({ Int($0) }) else { return nil }
                targetText = (host.contains(":") ? "[\(host)]" : host) + ":\(number)"
            } else {
                targetText = host
            }
        }
        guard let target = try? BackendTarget.parse(targetText, flag: "--token-redis", context: "value"), target != .dynamic else { return nil }
        return target
    }
}
