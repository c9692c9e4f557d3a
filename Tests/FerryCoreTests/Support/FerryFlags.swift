import Testing

@testable import FerryCommandLine
@testable import FerryCore

/// Ferry's flags are declared once, in FerryCommandLine, so tests give them as a user types them and go through the same parser as the `ferry` front.
enum FerryFlags {
    /// The configuration `arguments` give. Throws ArgumentParser's error for an unknown flag or a
    /// missing value, and Ferry's ConfigurationError for a value Ferry refuses.
    static func configuration(_ arguments: [String]) throws -> (FerryConfiguration, LoggingOptions) {
        try FerryOptions.parse(arguments).configuration()
    }

    /// The ConfigurationError `arguments` give; nil if they configure. If ArgumentParser itself
    /// refuses them, records an issue and returns nil: a test that expects Ferry's error must not
    /// pass on ArgumentParser's.
    static func problem(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
        let options: FerryOptions
        do {
            options = try FerryOptions.parse(arguments)
        } catch {
            Issue.record("ArgumentParser refused \(arguments): \(FerryOptions.message(for: error))", sourceLocation: sourceLocation)
            return nil
        }
        do {
            _ = try options.configuration()
            return nil
        } catch {
            return error
        }
    }
}
