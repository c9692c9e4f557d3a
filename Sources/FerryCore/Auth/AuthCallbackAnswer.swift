import Foundation
import NIOCore
import NIOHTTP1

/// What the `--auth-url` service decided about a handshake.
public enum AuthCallbackDecision: Sendable, Equatable {
    /// 2xx; the target it named (header or JSON body), if any.
    case allowed(target: BackendTarget?)
    /// 401 or 403, passed on to the client with the first line of the answer's body.
    case refused(HandshakeRejection)
    /// Anything else, a timeout or a failed connection: the handshake gets 503 (fail closed).
    case unavailable(reason: String)
}

/// Reads the service's answer: status, `X-Ferry-Target` or a JSON body, and `Cache-Control`. Pure, so
/// every rule is tested without sockets.
public struct AuthCallbackAnswer: Sendable, Equatable {
    public var decision: AuthCallbackDecision
    /// `Cache-Control: max-age`; nil without one, with `no-store`/`no-cache`, or with 0.
    public var maxAge: TimeAmount?

    public init(decision: AuthCallbackDecision, maxAge: TimeAmount? = nil) {
        self.decision = decision
        self.maxAge = maxAge
    }

    /// The longest refusal message passed on; the rest of the line is cut.
    static let maxMessageLength = 200

    /// `token`: the client's token, which is never repeated to the client or the log even if the
    /// service's message holds it.
    public static func read(status: Int, headers: HTTPHeaders, body: ByteBuffer, token: String?) -> AuthCallbackAnswer {
        let maxAge = Self.maxAge(headers)
        switch status {
        case 200..<300:
            do {
                return AuthCallbackAnswer(decision: .allowed(target: try Self.target(headers: headers, body: body)), maxAge: maxAge)
            } catch {
                return AuthCallbackAnswer(decision: .unavailable(reason: error.reason))
            }
        case 401, 403:
            let fallback = status == 401 ? "authorization required" : "authorization refused"
            let message = Self.firstLine(of: body, token: token) ?? fallback
            return AuthCallbackAnswer(decision: .refused(HandshakeRejection(.init(statusCode: status), message)), maxAge: maxAge)
        case 300..<400:
            return AuthCallbackAnswer(decision: .unavailable(reason: "the service answered \(status), a redirect; Ferry follows none (the token must reach only --auth-url)"))
        default:
            return AuthCallbackAnswer(decision: .unavailable(reason: "the service answered \(status); only 2xx, 401 and 403 are decisions"))
        }
    }

    struct TargetError: Error {
        var reason: String
    }

    /// `X-Ferry-Target`, else a JSON body's `target`, or `host` and `port` (websockify's
    /// JSONTokenApi); nil when neither names one. A target that cannot be read is an error, not "none".
    static func target(headers: HTTPHeaders, body: ByteBuffer) throws(TargetError) -> BackendTarget? {
        if let text = headers.first(name: "X-Ferry-Target") {
            return try Self.parseTarget(text, from: "X-Ferry-Target")
        }
        let text = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{") else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TargetError(reason: "the service's JSON body cannot be read")
        }
        if let target = object["target"] {
            guard let text = target as? String else { throw TargetError(reason: "the service's JSON \"target\" is not a string") }
            return try Self.parseTarget(text, from: "the JSON \"target\"")
        }
        guard object["host"] != nil else { return nil }
        guard let target = RedisTokenValue.target(text) else {
            throw TargetError(reason: "the service's JSON host and port name no target (expected {\"host\": \"HOST\", \"port\": PORT})")
        }
        return target
    }

    private static func parseTarget(_ text: String, from place: String) throws(TargetError) -> BackendTarget {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let target = try? BackendTarget.parse(trimmed, flag: "--auth-url", context: place), target != .dynamic else {
            throw TargetError(reason: "\(place) '\(trimmed.prefix(100))' names no target (expected HOST:PORT, unix:/path or tls://HOST:PORT)")
        }
        return target
    }

    /// `max-age` of `Cache-Control`, unless `no-store` or `no-cache` is also there.
    static func maxAge(_ headers: HTTPHeaders) -> TimeAmount? {
        var seconds: Int64?
        for directive in headers["Cache-Control"].flatMap({ $0.split(separator: ",") }) {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            switch parts.first {
            case "no-store", "no-cache": return nil
            case "max-age" where parts.count == 2: seconds = Int64(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            default: continue
            }
        }
        guard let seconds, seconds > 0 else { return nil }
        return .seconds(min(seconds, 86_400))
    }

    /// The body's first line, printable and short, with the token blanked out; nil if empty.
    static func firstLine(of body: ByteBuffer, token: String?) -> String? {
        let text = String(buffer: body)
        var line = String(text.prefix { $0 != "\n" && $0 != "\r" }.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        if let token, !token.isEmpty { line = line.replacingOccurrences(of: token, with: "…") }
        line = line.trimmingCharacters(in: .whitespaces)
        if line.count > Self.maxMessageLength { line = String(line.prefix(Self.maxMessageLength)) + "…" }
        return line.isEmpty ? nil : line
    }
}
