import Logging

/// Log level, format and file (`--log-level`, `--log-format`, `--log-file`).
public struct LoggingOptions: Sendable, Equatable {
    public var level: Logger.Level = .info
    public var format: LogFormat = .text
    /// Log lines also go to this file (`--log-file`), appended.
    public var file: String?

    public init() {}
}
