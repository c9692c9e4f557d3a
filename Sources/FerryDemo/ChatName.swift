import FerryCore

/// Checks the name a chat client gives. Names are short and plain so that every line the service
/// sends parses one way: no name starts a service line (`* `), holds the `: ` that ends a name in a
/// chat line, or the `,` that separates names in the roster.
enum ChatName {
    enum Problem: Error, Equatable {
        case empty
        case tooLong
        case character(Character)
    }

    /// The name in `line` without surrounding spaces, or why it will not do.
    static func check(_ line: String, limits: ChatLimits) -> Result<String, Problem> {
        let name = String(line.trimming { $0 == " " || $0 == "\t" })
        guard !name.isEmpty else { return .failure(.empty) }
        guard name.count <= limits.maxNameCharacters, name.utf8.count <= limits.maxNameBytes else {
            return .failure(.tooLong)
        }
        if let bad = name.first(where: { !Self.isAllowed($0) }) { return .failure(.character(bad)) }
        return .success(name)
    }

    /// Letters and digits of any script, spaces, and `. _ - '`.
    static func isAllowed(_ character: Character) -> Bool {
        if " ._-'".contains(character) { return true }
        return character.unicodeScalars.allSatisfy { scalar in
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                .decimalNumber, .letterNumber, .otherNumber,
                .nonspacingMark, .spacingMark, .enclosingMark:
                return true
            default:
                return false
            }
        }
    }

    /// Two names that differ only in case are the same person to a reader.
    static func key(_ name: String) -> String {
        name.lowercased()
    }
}
