/// Where a setting came from: shown by `--check` and in front of any problem with its value.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    /// A line (and column) of the `--config` file.
    case file(path: String, line: Int, column: Int)
    /// A `FERRY_*` environment variable.
    case environment(String)
    case commandLine

    public var description: String {
        switch self {
        case .file(let path, let line, let column): return "\(path):\(line):\(column)"
        case .environment(let name): return name
        case .commandLine: return "command line"
        }
    }
}

/// One option's values from one place (the file, the environment or the command line). A switch
/// (`tls-only`) has no values: `isOn` says whether it is given.
public struct Setting: Sendable, Equatable {
    public var option: OptionTable.Option
    public var values: [String]
    public var isOn: Bool
    /// Where each value came from (a list in the file: each item's line).
    public var sources: [SettingSource]
    /// Where the key itself is.
    public var source: SettingSource

    public init(option: OptionTable.Option, values: [String], sources: [SettingSource], source: SettingSource) {
        self.option = option
        self.values = values
        self.isOn = true
        self.sources = sources
        self.source = source
    }

    public init(switch option: OptionTable.Option, isOn: Bool, source: SettingSource) {
        self.option = option
        self.values = []
        self.isOn = isOn
        self.sources = []
        self.source = source
    }

    /// The command-line arguments this setting stands for.
    var arguments: [String] {
        guard self.option.takesValue else { return self.isOn ? ["--" + self.option.name] : [] }
        return self.values.flatMap { ["--" + self.option.name, $0] }
    }
}

/// A problem with the configuration file or a `FERRY_*` variable, placed where the user can find it:
/// the file, line and column (or the variable), the key, what is wrong and what is expected.
public struct ConfigSourceError: Error, Equatable, Sendable, CustomStringConvertible {
    public var source: SettingSource
    public var key: String?
    public var problem: String
    public var expected: String?

    public init(source: SettingSource, key: String? = nil, problem: String, expected: String? = nil) {
        self.source = source
        self.key = key
        self.problem = problem
        self.expected = expected
    }

    public var description: String {
        var text = "\(self.source): "
        if let key { text += "\(key): " }
        text += self.problem
        if let expected { text += "; expected \(expected)" }
        return text
    }
}
