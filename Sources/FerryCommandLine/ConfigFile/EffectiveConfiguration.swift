import Foundation
import FerryCore

/// What `ferry --check` prints: every option set, from the place that won, as a YAML file that reads
/// back the same (each line says where its value came from), with secrets masked.
public enum EffectiveConfiguration {
    public static func render(_ layers: ConfigLayers) -> String {
        var lines = ["# ferry --check: the configuration is valid.", "# Each option as set, and where: the file (FILE:LINE:COLUMN), a FERRY_* variable or the command line."]
        for warning in layers.warnings { lines.append("# warning: \(warning)") }
        if layers.effective.isEmpty { lines.append("# (no option set: every default applies)") }
        for setting in layers.effective where setting.option.name != "config" && setting.option.name != "check" {
            let name = setting.option.name
            guard setting.option.takesValue else {
                lines.append("\(name): \(setting.isOn)  # \(setting.source)")
                continue
            }
            let values = setting.values.map { Self.masked(name, $0) }
            if setting.option.repeats {
                lines.append("\(name):")
                for (index, value) in values.enumerated() {
                    let source = index < setting.sources.count ? setting.sources[index] : setting.source
                    lines.append("  - \(Self.quoted(value))  # \(source)")
                }
            } else {
                lines.append("\(name): \(Self.quoted(values.last ?? ""))  # \(setting.source)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Passwords in `--basic-auth USER:PASSWORD` are shown as `****`, in a `--token-redis` URL as `***`.
    static func masked(_ name: String, _ value: String) -> String {
        switch name {
        case "basic-auth" where !value.hasPrefix("@"):
            guard let colon = value.firstIndex(of: ":") else { return "****" }
            return value[..<colon] + ":****"
        case "token-redis":
            // As Redis URLs are shown in logs and errors.
            return RedisEndpoint.redact(value)
        default:
            return value
        }
    }

    /// A value quoted when YAML would otherwise read it differently (a `#`, a leading `*`, `: `…).
    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && !value.contains(": ") && !value.contains(" #") && !value.hasSuffix(":")
            && !"*&!|>'\"%@`#,[]{}- ?".contains(value.first!) && value.trimmingCharacters(in: .whitespaces) == value
        if plain { return value }
        return "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
