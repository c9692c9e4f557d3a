import FerryCore
import Foundation

/// The relay's settings from its three places, merged into the one command line ``FerryOptions``
/// parses: the `--config` file at the bottom, the `FERRY_*` environment above it, the command line on
/// top. An option set in a higher place replaces it in the lower ones whole (a `--route` on the
/// command line replaces the file's routes; it does not add to them). Values are read and checked by
/// the flags' own code, so the three can never disagree on a name, a default or a check; a problem is
/// reported at the place its value came from.
public struct ConfigLayers: Sendable {
    /// The command line as given (without the program's name) and the environment, kept to read the
    /// file again on reload.
    public let commandLine: [String]
    public let environment: [String: String]
    /// `--config` (or `FERRY_CONFIG`), if any.
    public let configPath: String?
    /// The file's size, time and inode, taken just before it was read: a change after that, even one
    /// made before the relay is up, shows as a change to the watch.
    public let fileStamp: FileStamp?
    /// The merged arguments, for ``FerryOptions``.
    public let arguments: [String]
    /// Every option set, from the place that won, in the option table's order.
    public let effective: [Setting]
    /// What was read but not used (a `FERRY_` variable that names no option), to be printed at start.
    public let warnings: [ConfigSourceError]

    /// Merges the three places; the file is read now.
    public static func resolve(
        commandLine: [String],
        environment: [String: String],
        table: OptionTable = .relay,
        readFile: (String) throws(ConfigSourceError) -> [Setting] = { (path) throws(ConfigSourceError) in try ConfigFileReader.read(path: path) }
    ) throws(ConfigSourceError) -> ConfigLayers {
        let given = Self.commandLineSettings(commandLine, table: table)
        let (fromEnvironment, warnings) = try EnvironmentSettings.read(environment, table: table)
        let configPath = given.first { $0.option.name == "config" }?.values.last ?? fromEnvironment.first { $0.option.name == "config" }?.values.last
        let fileStamp = configPath.map { FileStamp($0) }
        let fromFile = try configPath.map { (path) throws(ConfigSourceError) in try readFile(path) } ?? []

        let onCommandLine = Set(given.map(\.option.name))
        let inEnvironment = Set(fromEnvironment.map(\.option.name))
        let fileKept = fromFile.filter { !onCommandLine.contains($0.option.name) && !inEnvironment.contains($0.option.name) }
        let environmentKept = fromEnvironment.filter { !onCommandLine.contains($0.option.name) && $0.option.name != "config" }
        var arguments = fileKept.flatMap(\.arguments) + environmentKept.flatMap(\.arguments)
        if let configPath, !onCommandLine.contains("config") { arguments += ["--config", configPath] }
        arguments += commandLine

        let winners = fileKept + environmentKept + given
        let effective = table.options.compactMap { option in winners.first { $0.option.name == option.name } }
        return ConfigLayers(
            commandLine: commandLine,
            environment: environment,
            configPath: configPath,
            fileStamp: fileStamp,
            arguments: arguments,
            effective: effective,
            warnings: warnings
        )
    }

    /// The same command line and environment with the file read again (a reload).
    public func reread(table: OptionTable = .relay) throws(ConfigSourceError) -> ConfigLayers {
        try Self.resolve(commandLine: self.commandLine, environment: self.environment, table: table)
    }

    /// Where the value `value` of `flag` (`--route`) came from; nil for the command line.
    public func source(flag: String, value: String) -> SettingSource? {
        let name = flag.hasPrefix("--") ? String(flag.dropFirst(2)) : flag
        guard let setting = self.effective.first(where: { $0.option.name == name }), setting.source != .commandLine else { return nil }
        if let index = setting.values.firstIndex(of: value), index < setting.sources.count { return setting.sources[index] }
        if let index = setting.values.firstIndex(where: { !value.isEmpty && ($0.contains(value) || value.contains($0)) }), index < setting.sources.count {
            return setting.sources[index]
        }
        return setting.source
    }

    /// A configuration error with the place its value came from in front, when that is the file or
    /// the environment: `ferry.yaml:7:13: --route /vnc=localhost: port is missing; …`.
    public func placed(_ error: ConfigurationError) -> String {
        guard let source = self.source(flag: error.flag, value: error.value) else { return error.description }
        return "\(source): \(error.description)"
    }

    /// The options given on the command line (their names and values), for precedence and `--check`.
    /// Only the shape is read here; ArgumentParser reads the line itself.
    static func commandLineSettings(_ arguments: [String], table: OptionTable) -> [Setting] {
        var settings: [Setting] = []
        var index = 0
        func add(_ option: OptionTable.Option, _ value: String?) {
            if let existing = settings.firstIndex(where: { $0.option.name == option.name }) {
                if let value {
                    settings[existing].values.append(value)
                    settings[existing].sources.append(.commandLine)
                }
            } else if let value {
                settings.append(Setting(option: option, values: [value], sources: [.commandLine], source: .commandLine))
            } else {
                settings.append(Setting(switch: option, isOn: true, source: .commandLine))
            }
        }
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let body = argument.dropFirst(2)
            let name = String(body.split(separator: "=", maxSplits: 1).first ?? "")
            guard let option = table.option(named: name) else { continue }
            if !option.takesValue {
                add(option, nil)
            } else if let equals = body.firstIndex(of: "=") {
                add(option, String(body[body.index(after: equals)...]))
            } else if index < arguments.count {
                add(option, arguments[index])
                index += 1
            }
        }
        return settings
    }
}
