import Foundation

/// Reads the `FERRY_*` environment variables: `FERRY_BUFFER_SIZE=1MiB` is `--buffer-size 1MiB`. An
/// option that repeats takes several values separated by spaces or newlines
/// (`FERRY_ROUTE="/vnc=10.0.0.5:5900 /ssh=10.0.0.6:22"`); a switch takes true or false. A bad value
/// is an error. A `FERRY_` variable that names no option is warned about, with the nearest name, and
/// ignored, not refused: the prefix is shared with other tools (the systemd unit's `FERRY_ARGS`, the
/// fuzzing script's `FERRY_FUZZ_*`, whatever a platform sets), and a relay must not fail to start
/// over a variable meant for something else.
public enum EnvironmentSettings {
    public static let prefix = "FERRY_"

    /// Variables of other tools, never warned about.
    static func isOthers(_ variable: String) -> Bool {
        variable == "FERRY_ARGS" || variable.hasPrefix("FERRY_FUZZ_")
    }

    /// The settings, and a warning for each `FERRY_` variable that names no option.
    public static func read(_ environment: [String: String], table: OptionTable = .relay) throws(ConfigSourceError) -> (settings: [Setting], warnings: [ConfigSourceError]) {
        var settings: [Setting] = []
        var warnings: [ConfigSourceError] = []
        for (variable, text) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix(Self.prefix) && !Self.isOthers(variable) {
            let name = variable.dropFirst(Self.prefix.count).lowercased().replacingOccurrences(of: "_", with: "-")
            let source = SettingSource.environment(variable)
            guard let option = table.option(named: name) else {
                let hint = table.suggestion(for: name).map { "did you mean \(OptionTable.Option(name: $0, takesValue: true, repeats: false).environmentName)?" }
                warnings.append(ConfigSourceError(
                    source: source,
                    problem: "names no option of ferry, and is ignored" + (hint.map { "; \($0)" } ?? ""),
                    expected: hint == nil ? "FERRY_ and a long flag of ferry --help in capitals, dashes as underscores, e.g. FERRY_BUFFER_SIZE" : nil
                ))
                continue
            }
            guard option.takesValue else {
                guard let isOn = ConfigFileReader.boolean(text.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigSourceError(source: source, problem: "a switch takes true or false, not '\(text)'", expected: "\(variable)=true")
                }
                settings.append(Setting(switch: option, isOn: isOn, source: source))
                continue
            }
            let values = option.repeats ? text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init) : [text]
            guard !values.isEmpty, !values.contains(where: \.isEmpty) else {
                throw ConfigSourceError(source: source, problem: "is empty", expected: "a value, or the variable unset")
            }
            settings.append(Setting(option: option, values: values, sources: values.map { _ in source }, source: source))
        }
        return (settings, warnings)
    }
}
