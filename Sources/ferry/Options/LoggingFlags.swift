import ArgumentParser
import FerryCore

/// Logging flags, shared by the relay and the demo.
struct LoggingFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Least severe level logged: trace, debug, info, notice, warning, error, critical. (default: info)", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Log line format: text, or json (one object per line). (default: text)", valueName: "format"))
    var logFormat: String?

    @Option(help: ArgumentHelp("Also append log lines to this file.", valueName: "file"))
    var logFile: String?

    func apply(to options: inout CommandLineOptions) {
        options.logLevel = self.logLevel
        options.logFormat = self.logFormat
        options.logFile = self.logFile
    }
}
