import Logging
import NIOConcurrencyHelpers

@testable import FerryCore

/// A logger whose lines (FerryLogHandler's text format, every level) are kept for inspection.
final class AuthLogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    var text: String { self.lines.withLockedValue { $0.joined() } }

    func logger(format: LogFormat = .text) -> Logger {
        var options = LoggingOptions()
        options.level = .trace
        options.format = format
        return Logger(label: "ferry.auth-tests") { label in
            FerryLogHandler(label: label, options: options, sink: { line in self.lines.withLockedValue { $0.append(line) } })
        }
    }
}
