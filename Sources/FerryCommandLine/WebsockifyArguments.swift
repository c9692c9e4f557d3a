import FerryCore

/// websockify's command line, read: the options given and their values, the positional arguments,
/// and Ferry's own flags, passed on as given (``FerryOptions/kind(of:)`` says which take a value).
/// ``WebsockifyCommandLine`` translates what is read here.
struct WebsockifyArguments {
    var options: [String: String] = [:]
    /// Every websockify option given, with or without a value.
    var names: Set<String> = []
    var positional: [String] = []
    var passed: [String] = []

    init(_ arguments: [String]) throws(ConfigurationError) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                throw ConfigurationError(flag: "--", value: arguments[index...].joined(separator: " "), problem: "websockify's wrap mode is not supported", instead: "Ferry does not start programs; run the program under your supervisor and give its address as the target")
            }
            if argument.hasPrefix("--") {
                try self.readLong(argument, arguments, &index)
            } else if argument.hasPrefix("-") && argument.count > 1 {
                for letter in argument.dropFirst() {
                    guard let name = WebsockifyCommandLine.shortSwitches[letter] else {
                        throw ConfigurationError(flag: "-\(letter)", value: argument, problem: "websockify has no such option", expected: "-v, -D, -6 or a --long option")
                    }
                    self.names.insert(name)
                }
            } else {
                self.positional.append(argument)
            }
        }
    }

    /// One `--name` or `--name=value` (and its value from the next argument, when it takes one).
    private mutating func readLong(_ argument: String, _ arguments: [String], _ index: inout Int) throws(ConfigurationError) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        let inlineValue = parts.count == 2 ? String(parts[1]) : nil
        if WebsockifyCommandLine.valued.contains(name) {
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw ConfigurationError(flag: name, value: "", problem: "needs a value", expected: "\(name) VALUE")
                }
                value = arguments[index]
                index += 1
            }
            if let fix = WebsockifyCommandLine.unsupported[name] {
                // A password is never repeated, not even in an error.
                let shown = name == "--key-password" ? "" : value
                throw ConfigurationError(flag: name, value: shown, problem: "not supported by Ferry", instead: fix)
            }
            self.options[name] = value
            self.names.insert(name)
        } else if WebsockifyCommandLine.switches.contains(name) {
            guard inlineValue == nil else {
                throw ConfigurationError(flag: name, value: inlineValue ?? "", problem: "takes no value", expected: name)
            }
            if let fix = WebsockifyCommandLine.unsupported[name] {
                throw ConfigurationError(flag: name, value: "", problem: "not supported by Ferry", instead: fix)
            }
            self.names.insert(name)
        } else {
            switch FerryOptions.kind(of: name) {
            case .switch?:
                self.passed.append(argument)
            case .valued?:
                self.passed.append(argument)
                if inlineValue == nil {
                    guard index < arguments.count else {
                        throw ConfigurationError(flag: name, value: "", problem: "needs a value", expected: "\(name) VALUE (see ferry --help)")
                    }
                    self.passed.append(arguments[index])
                    index += 1
                }
            case nil:
                throw ConfigurationError(flag: name, value: "", problem: "neither websockify nor Ferry has this option", expected: "an option from websockify --help or ferry --help")
            }
        }
    }
}
