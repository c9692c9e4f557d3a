import FerryCommandLine
import FerryCore
import NIOConcurrencyHelpers

/// The file, environment and command line the relay was started with: `--check` prints them, a
/// problem with a value names the place it came from, and a reload reads the file again under the
/// same environment and flags. Set once, before the command line is parsed.
enum StartLayers {
    static let current = NIOLockedValueBox<ConfigLayers?>(nil)

    /// `error` with the file position (or variable) its value came from in front, if not the command line.
    static func placed(_ error: ConfigurationError) -> String {
        self.current.withLockedValue { $0 }?.placed(error) ?? error.description
    }
}
