import Foundation
import FerryCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a flag's value is read: counts, sizes, durations, and paths that must exist. Each failure
/// names the flag, the value and what is expected.
enum FlagValue {
    static func checkReadable(_ path: String, flag: String) throws(ConfigurationError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "file not found", expected: "the path of a readable PEM file")
        }
        guard info.st_mode & S_IFMT == S_IFREG || info.st_mode & S_IFMT == S_IFLNK, access(path, R_OK) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "not a readable file", expected: "the path of a readable PEM file")
        }
    }

    static func checkFolder(_ path: String, flag: String, expected: String) throws(ConfigurationError) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, access(path, R_OK | X_OK) == 0 else {
            throw ConfigurationError(flag: flag, value: path, problem: "not a readable folder", expected: expected)
        }
    }

    static func count(_ flag: String, _ text: String?, default value: Int, minimum: Int) throws(ConfigurationError) -> Int {
        guard let text else { return value }
        guard let number = Int(text), number >= minimum else {
            throw ConfigurationError(flag: flag, value: text, problem: "not a whole number of at least \(minimum)", expected: "e.g. \(flag) \(value)")
        }
        return number
    }

    /// Sizes: a byte count with an optional binary unit, `64k`, `256KiB`, `1MiB`, `1m`, `2G`. `KB`,
    /// `MB` and `GB` are refused: they mean powers of 1000 to some and of 1024 to others, and a
    /// buffer bound should not depend on which the reader assumed.
    static func size(_ flag: String, _ text: String?, default value: Int, minimum: Int) throws(ConfigurationError) -> Int {
        guard let text else { return value }
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isNumber }
        let unit = lower.dropFirst(digits.count)
        let multiplier: Int?
        switch unit {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = 1 << 10
        case "m", "mib": multiplier = 1 << 20
        case "g", "gib": multiplier = 1 << 30
        case "kb", "mb", "gb":
            let binary = unit.prefix(1).uppercased() + "iB"
            throw ConfigurationError(
                flag: flag, value: text,
                problem: "\(unit.uppercased()) could mean powers of 1000 or of 1024",
                expected: "\(digits)\(binary) (powers of 1024), or a plain byte count"
            )
        default: multiplier = nil
        }
        guard let number = Int(digits), let multiplier, number <= Int(Int32.max), number * multiplier >= minimum else {
            throw ConfigurationError(flag: flag, value: text, problem: "not a size of at least \(minimum) bytes", expected: "a byte count with an optional unit, e.g. 256KiB or 1MiB")
        }
        return number * multiplier
    }

    /// Durations: `500ms`, `30s`, `5m`, `1h`, or a plain number of seconds.
    static func duration(_ flag: String, _ text: String?, default value: TimeAmount, allowZero: Bool) throws(ConfigurationError) -> TimeAmount {
        guard let text else { return value }
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isNumber }
        let unit = lower.dropFirst(digits.count)
        let result: TimeAmount?
        if let number = Int64(digits), number <= 10_000_000 {
            switch unit {
            case "ms": result = .milliseconds(number)
            case "", "s": result = .seconds(number)
            case "m", "min": result = .minutes(number)
            case "h": result = .hours(number)
            default: result = nil
            }
        } else {
            result = nil
        }
        guard let result, allowZero || result > .zero else {
            let zero = allowZero ? " (0 turns it off)" : ""
            throw ConfigurationError(flag: flag, value: text, problem: "not a duration", expected: "a number with a unit, e.g. 500ms, 30s, 5m or 1h\(zero)")
        }
        return result
    }

    /// A secret kept in a file (so it stays out of the process list): its first line, trimmed.
    static func secret(inFile path: String, flag: String) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(flag: flag, value: path, problem: "cannot be read", expected: "a readable file holding the token")
        }
        let firstLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let secret = firstLine.trimmingCharacters(in: .whitespaces)
        guard !secret.isEmpty else {
            throw ConfigurationError(flag: flag, value: path, problem: "holds no token", expected: "the token on the file's first line")
        }
        return secret
    }
}
