import Crypto
import Foundation

/// HTTP Basic authentication (`--basic-auth`, websockify's BasicHTTPAuth): the upgrade, and with
/// `--basic-auth-web` the `--web` files too, need `Authorization: Basic` with a listed user and
/// password. Browsers send the credentials they were asked for by the page's 401 again on the
/// WebSocket handshake to the same origin, which is why this works for noVNC without code.
///
/// The configured users, parsed at start-up; the check of a request is in
/// `Auth/BasicCredentialsCheck.swift`. Passwords are kept as SHA-256 digests and compared in constant
/// time; neither they nor the user name are logged. Basic auth sends the password with every request: use it over `wss://`/`https://`.
public struct BasicCredentials: Sendable, Equatable {
    /// User name → SHA-256 of the password.
    var users: [String: [UInt8]]
    /// Also protect `--web` files.
    public var protectsWeb: Bool
    public static let realm = "Ferry"

    public init(pairs: [(user: String, password: String)], protectsWeb: Bool = false) {
        var users: [String: [UInt8]] = [:]
        for pair in pairs { users[pair.user] = Array(SHA256.hash(data: Array(pair.password.utf8))) }
        self.users = users
        self.protectsWeb = protectsWeb
    }

    public static func == (lhs: BasicCredentials, rhs: BasicCredentials) -> Bool {
        lhs.users == rhs.users && lhs.protectsWeb == rhs.protectsWeb
    }

    /// Parses `USER:PASSWORD`, or `@FILE` with one `USER:PASSWORD` per line (`#` comments).
    public static func parse(_ text: String, flag: String = "--basic-auth") throws(ConfigurationError) -> [(user: String, password: String)] {
        var lines: [Substring]
        var place = "the value"
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(flag: flag, value: text, problem: "cannot read \(path)", expected: "@FILE with one USER:PASSWORD per line")
            }
            lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            lines = lines.filter { !$0.trimmingSpaces.isEmpty && !$0.trimmingSpaces.hasPrefix("#") }
            place = path
        } else {
            lines = [Substring(text)]
        }
        var pairs: [(user: String, password: String)] = []
        for (index, line) in lines.enumerated() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex else {
                // The value holds a password: never repeat it.
                throw ConfigurationError(flag: flag, value: text.hasPrefix("@") ? "\(place) line \(index + 1)" : "", problem: "not USER:PASSWORD", expected: "USER:PASSWORD (a non-empty user without ':'), or @FILE")
            }
            pairs.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        guard !pairs.isEmpty else {
            throw ConfigurationError(flag: flag, value: text, problem: "no USER:PASSWORD in the file", expected: "@FILE with one USER:PASSWORD per line")
        }
        return pairs
    }
}
