import ArgumentParser
import Logging
import FerryCore

/// Logging flags, shared by the relay and the demo.
public struct LoggingFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Least severe level logged: trace, debug, info, notice, warning, error, critical. (default: info)", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Log line format: text, or json (one object per line). (default: text)", valueName: "format"))
    var logFormat: String?

    @Option(help: ArgumentHelp("Also append log lines to this file.", valueName: "file"))
    var logFile: String?

    /// Parses `--log-level`, `--log-format` and `--log-file`.
    public func loggingOptions() throws(ConfigurationError) -> LoggingOptions {
        var options = LoggingOptions()
        if let text = self.logLevel {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigurationError(flag: "--log-level", value: text, problem: "unknown level", expected: Logger.Level.allCases.map(\.rawValue).joined(separator: "|"))
            }
            options.level = level
        }
        if let path = self.logFile {
            guard !path.isEmpty, !path.hasSuffix("/") else {
                throw ConfigurationError(flag: "--log-file", value: path, problem: "not a file name", expected: "e.g. --log-file /var/log/ferry.log")
            }
            options.file = path
        }
        if let text = self.logFormat {
            guard let format = LogFormat(rawValue: text.lowercased()) else {
                throw ConfigurationError(flag: "--log-format", value: text, problem: "unknown format", expected: "text|json")
            }
            options.format = format
        }
        return options
    }
}
