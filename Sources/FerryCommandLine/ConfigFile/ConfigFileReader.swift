import Foundation
import Yams

/// Reads a `--config` file: YAML (and so JSON, which is YAML too) whose keys are the command line's
/// long flags without their dashes, each with the same values the flag takes:
///
/// ```yaml
/// listen: 0.0.0.0:6080
/// buffer-size: 256KiB
/// tls-only: true
/// allow-origin: [https://console.example.com]
/// routes:
///   - path: /vnc
///     target: 10.0.0.5:5900
///     auth: token
///   - /ssh=127.0.0.1:22
/// ```
///
/// `routes` and `listeners` also take each entry as a mapping (a route's `path`, `target` and its
/// options; a listener's `address`, `proxy-protocol` and `mode`), turned here into the flag's text.
/// Only the shape is checked here (known keys, one value or a list, booleans for switches); the
/// values are read by the same code as the flags', and a problem with one is reported at the line
/// it came from (``ConfigLayers``).
public enum ConfigFileReader {
    /// Larger files are refused: a configuration is a few KiB, and the file is read on every reload.
    public static let maxSize = 1 << 20

    public static func read(path: String, table: OptionTable = .relay) throws(ConfigSourceError) -> [Setting] {
        let start = SettingSource.file(path: path, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigSourceError(source: start, problem: "cannot be read", expected: "the path of a readable YAML or JSON file (--config FILE)")
        }
        guard data.count <= Self.maxSize else {
            throw ConfigSourceError(source: start, problem: "\(data.count) bytes, over the \(Self.maxSize >> 20) MiB a configuration file may have")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigSourceError(source: start, problem: "not UTF-8 text")
        }
        return try Self.parse(text, path: path, table: table)
    }

    public static func parse(_ text: String, path: String, table: OptionTable = .relay) throws(ConfigSourceError) -> [Setting] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.syntaxError(error, path: path)
        } catch {
            throw ConfigSourceError(source: .file(path: path, line: 1, column: 1), problem: "cannot be read as YAML (\(error))")
        }
        guard let root else { return [] }  // an empty file: nothing set
        guard case .mapping(let mapping) = root else {
            throw ConfigSourceError(source: Self.place(root, path), problem: "the file must be a mapping of option names to values", expected: "e.g. listen: 0.0.0.0:6080")
        }
        var settings: [Setting] = []
        for (keyNode, valueNode) in mapping {
            let place = Self.place(keyNode, path)
            guard case .scalar(let keyScalar) = keyNode else {
                throw ConfigSourceError(source: place, problem: "a key must be a plain name", expected: "an option name such as buffer-size")
            }
            let key = keyScalar.string
            // `routes` and `listeners` are the list forms of `route` and `listen`.
            let name = key == "routes" ? "route" : key == "listeners" ? "listen" : key
            guard let option = table.option(named: name), name != "config" else {
                guard name != "config" else {
                    throw ConfigSourceError(source: place, problem: "a configuration file cannot name another", expected: "--config on the command line (or FERRY_CONFIG)")
                }
                let problem = "unknown option '\(key)'"
                let hint = table.suggestion(for: key).map { "did you mean '\($0)'?" }
                throw ConfigSourceError(source: place, key: nil, problem: problem + (hint.map { "; \($0)" } ?? ""), expected: hint == nil ? "a long flag of ferry --help, without its dashes" : nil)
            }
            // A key given twice was refused by the YAML parser already, with its place.
            let setting = try Self.setting(option, key: key, value: valueNode, place: place, path: path)
            if let index = settings.firstIndex(where: { $0.option.name == option.name }) {
                // `route` and `routes` (or `listen` and `listeners`) together: one list.
                settings[index].values += setting.values
                settings[index].sources += setting.sources
            } else {
                settings.append(setting)
            }
        }
        return settings
    }

    // MARK: Values

    private static func setting(_ option: OptionTable.Option, key: String, value: Node, place: SettingSource, path: String) throws(ConfigSourceError) -> Setting {
        guard option.takesValue else {
            guard case .scalar(let scalar) = value, let isOn = Self.boolean(scalar.string) else {
                throw ConfigSourceError(source: Self.place(value, path), key: key, problem: "a switch takes true or false", expected: "\(key): true")
            }
            return Setting(switch: option, isOn: isOn, source: place)
        }
        var values: [String] = []
        var sources: [SettingSource] = []
        switch value {
        case .sequence(let items):
            guard option.repeats else {
                throw ConfigSourceError(source: Self.place(value, path), key: key, problem: "takes one value, not a list", expected: "\(key): VALUE")
            }
            for item in items {
                let texts = try Self.texts(of: item, option: option, key: key, path: path)
                values += texts
                sources += texts.map { _ in Self.place(item, path) }
            }
        default:
            let texts = try Self.texts(of: value, option: option, key: key, path: path)
            values += texts
            sources += texts.map { _ in Self.place(value, path) }
        }
        return Setting(option: option, values: values, sources: sources, source: place)
    }

    /// One entry's values: a scalar as written, or (for routes and listeners) a mapping turned into
    /// the flag's text; a route with `targets:` gives one `--route` per target (a pool).
    private static func texts(of node: Node, option: OptionTable.Option, key: String, path: String) throws(ConfigSourceError) -> [String] {
        switch node {
        case .scalar(let scalar):
            guard !scalar.string.isEmpty else {
                throw ConfigSourceError(source: Self.place(node, path), key: key, problem: "no value")
            }
            return [scalar.string]
        case .mapping(let mapping) where option.name == "route":
            return try Self.routeTexts(mapping, node: node, path: path)
        case .mapping(let mapping) where option.name == "listen":
            return [try Self.listenerText(mapping, node: node, path: path)]
        case .alias:
            throw ConfigSourceError(source: Self.place(node, path), key: key, problem: "YAML aliases are not read", expected: "the value written out")
        default:
            throw ConfigSourceError(source: Self.place(node, path), key: key, problem: "expected a single value here", expected: "\(key): VALUE")
        }
    }

    /// `{path: /vnc, target: 10.0.0.5:5900, auth: token, client-cn: [alice, bob]}` →
    /// `/vnc=10.0.0.5:5900,auth=token,client-cn=alice,client-cn=bob`; with `targets: [a, b]`, one
    /// text per target (the options on the first).
    private static func routeTexts(_ mapping: Node.Mapping, node: Node, path: String) throws(ConfigSourceError) -> [String] {
        var routePath: String?
        var targets: [String] = []
        var options: [String] = []
        for (keyNode, valueNode) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "path": routePath = try Self.scalar(valueNode, key: "routes: path", path: path)
            case "target": targets.append(try Self.scalar(valueNode, key: "routes: target", path: path))
            case "targets":
                guard case .sequence(let items) = valueNode, items.count > 0 else {
                    throw ConfigSourceError(source: Self.place(valueNode, path), key: "routes: targets", problem: "expected a list of targets", expected: "targets: [10.0.0.1:1883, 10.0.0.2:1883]")
                }
                for item in items { targets.append(try Self.scalar(item, key: "routes: targets", path: path)) }
            default:
                if case .sequence(let items) = valueNode {
                    for item in items { options.append("\(key)=\(try Self.scalar(item, key: "routes: \(key)", path: path))") }
                } else {
                    options.append("\(key)=\(try Self.scalar(valueNode, key: "routes: \(key)", path: path))")
                }
            }
        }
        guard let routePath, let first = targets.first else {
            throw ConfigSourceError(source: Self.place(node, path), key: "routes", problem: "a route needs a path and a target", expected: "- path: /vnc\n    target: 127.0.0.1:5900")
        }
        return [([routePath + "=" + first] + options).joined(separator: ",")] + targets.dropFirst().map { routePath + "=" + $0 }
    }

    /// `{address: 0.0.0.0:6080, proxy-protocol: true}` → `0.0.0.0:6080,proxy-protocol`.
    private static func listenerText(_ mapping: Node.Mapping, node: Node, path: String) throws(ConfigSourceError) -> String {
        var address: String?
        var options: [String] = []
        for (keyNode, valueNode) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "address":
                address = try Self.scalar(valueNode, key: "listeners: address", path: path)
            case "proxy-protocol":
                guard let on = Self.boolean(try Self.scalar(valueNode, key: "listeners: proxy-protocol", path: path)) else {
                    throw ConfigSourceError(source: Self.place(valueNode, path), key: "listeners: proxy-protocol", problem: "takes true or false")
                }
                if on { options.append("proxy-protocol") }
            case "mode":
                options.append("mode=" + (try Self.scalar(valueNode, key: "listeners: mode", path: path)))
            default:
                throw ConfigSourceError(source: Self.place(keyNode, path), key: "listeners", problem: "unknown listener option '\(key)'", expected: "address, proxy-protocol or mode")
            }
        }
        guard let address else {
            throw ConfigSourceError(source: Self.place(node, path), key: "listeners", problem: "a listener needs an address", expected: "- address: 0.0.0.0:6080")
        }
        return ([address] + options).joined(separator: ",")
    }

    private static func scalar(_ node: Node, key: String, path: String) throws(ConfigSourceError) -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            throw ConfigSourceError(source: Self.place(node, path), key: key, problem: "expected a single value here")
        }
        return scalar.string
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    // MARK: Places

    private static func place(_ node: Node, _ path: String) -> SettingSource {
        let mark: Mark?
        switch node {
        case .scalar(let scalar): mark = scalar.mark
        case .mapping(let mapping): mark = mapping.mark
        case .sequence(let sequence): mark = sequence.mark
        case .alias(let alias): mark = alias.mark
        }
        return .file(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func syntaxError(_ error: YamlError, path: String) -> ConfigSourceError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigSourceError(source: .file(path: path, line: mark.line, column: mark.column), problem: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigSourceError(
                source: .file(path: path, line: context.mark.line, column: context.mark.column),
                key: duplicates.joined(separator: ", "),
                problem: "given more than once",
                expected: "one entry per key; a list for several values"
            )
        default:
            return ConfigSourceError(source: .file(path: path, line: 1, column: 1), problem: "not valid YAML: \(error)")
        }
    }
}
