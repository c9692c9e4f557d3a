import ArgumentParser

/// The relay's options as ``FerryOptions`` declares them: each long name, whether it takes a value and
/// whether it may be given more than once. Read off the declarations themselves (a parsed, empty
/// ``FerryOptions`` walked with `Mirror`), so that the configuration file and the `FERRY_*`
/// environment variables know exactly the flags the command line knows, by the same names, and
/// cannot drift from them (a test checks every name and kind against the parser and `--help`).
public struct OptionTable: Sendable {
    public struct Option: Sendable, Equatable {
        /// The long name without dashes: `buffer-size`.
        public var name: String
        /// `--tls-only` stands alone; `--buffer-size` takes a value.
        public var takesValue: Bool
        /// `--route` may be given several times, each adding a value.
        public var repeats: Bool

        /// `FERRY_BUFFER_SIZE`.
        public var environmentName: String { "FERRY_" + self.name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    public let options: [Option]
    private let byName: [String: Option]

    init(options: [Option]) {
        self.options = options
        self.byName = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func option(named name: String) -> Option? { self.byName[name] }

    /// The relay's table, built once.
    public static let relay = OptionTable(options: Self.readDeclarations())

    /// The closest known names to a misspelt one (for "did you mean").
    public func suggestion(for name: String) -> String? {
        let scored = self.options.map { ($0.name, editDistance(name, $0.name)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, name.count / 3) else { return nil }
        return best
    }

    // MARK: Reading the declarations

    private static func readDeclarations() -> [Option] {
        guard let parsed = try? FerryOptions.parse([]) else {
            preconditionFailure("FerryOptions must parse an empty command line")
        }
        var options: [Option] = []
        for group in Mirror(reflecting: parsed).children {
            // Each topic is an @OptionGroup; its parsed value is the group's flags.
            guard let flags = Self.parsedValue(of: group.value) else { continue }
            for child in Mirror(reflecting: flags).children {
                guard let label = child.label, label.hasPrefix("_") else { continue }
                let wrapper = String(describing: type(of: child.value))
                let option: Option
                let name = Self.kebabCase(String(label.dropFirst()))
                if wrapper.hasPrefix("Flag<") {
                    option = Option(name: name, takesValue: false, repeats: false)
                } else if wrapper.hasPrefix("Option<Array<") {
                    option = Option(name: name, takesValue: true, repeats: true)
                } else if wrapper.hasPrefix("Option<") {
                    option = Option(name: name, takesValue: true, repeats: false)
                } else {
                    continue
                }
                options.append(option)
            }
        }
        return options
    }

    /// The value inside a parsed property wrapper (`OptionGroup`), if it is one.
    private static func parsedValue(of wrapper: Any) -> Any? {
        guard String(describing: type(of: wrapper)).hasPrefix("OptionGroup<") else { return nil }
        for child in Mirror(reflecting: wrapper).children where child.label == "_parsedValue" {
            return Mirror(reflecting: child.value).children.first { $0.label == "value" }?.value
        }
        return nil
    }

    /// `maxConnectionsPerIp` → `max-connections-per-ip`, as ArgumentParser names a long flag.
    static func kebabCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                if !result.isEmpty { result.append("-") }
                result.append(Character(character.lowercased()))
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// Levenshtein distance, for suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
