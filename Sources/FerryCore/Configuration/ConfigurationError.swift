/// A start-up problem with a flag or the environment, worded so the user can fix it from the message alone.
///
/// `description` is one line: the flag, the bad value, and what is expected instead.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var flag: String
    public var value: String
    public var problem: String
    public var expected: String?
    /// For what Ferry does not do: the Ferry way to get the same (printed as `; instead, …`).
    public var instead: String?

    public init(flag: String, value: String, problem: String, expected: String? = nil) {
        self.flag = flag
        self.value = value
        self.problem = problem
        self.expected = expected
    }

    public init(flag: String, value: String, problem: String, instead: String) {
        self.flag = flag
        self.value = value
        self.problem = problem
        self.instead = instead
    }

    public var description: String {
        // `--route /vnc=localhost: port is missing`, not `…localhost:: port…`.
        let subject = self.value.isEmpty ? "\(self.flag):" : self.value.hasSuffix(":") ? "\(self.flag) \(self.value)" : "\(self.flag) \(self.value):"
        if let expected { return "\(subject) \(self.problem); expected \(expected)" }
        if let instead { return "\(subject) \(self.problem); instead, \(instead)" }
        return "\(subject) \(self.problem)"
    }
}
