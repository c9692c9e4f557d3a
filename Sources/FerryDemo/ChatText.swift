import FerryCore

/// Everything the chat service says, in one place. Plain lines that read well in `nc`; the service's
/// own lines start with `* ` (no name can), chat lines are `NAME: TEXT`, and the demo page reads the
/// join, leave, roster and name lines below by their shape, so change them together with its script.
enum ChatText {
    static let welcome = "* Welcome to the Ferry demo chat. This is a plain TCP service; browsers join it through Ferry.\n"

    static func askName(_ limits: ChatLimits) -> String {
        "* What is your name? (up to \(limits.maxNameCharacters) letters, digits, spaces or . _ - ')\n"
    }

    static func nameRefused(_ problem: ChatName.Problem, limits: ChatLimits) -> String {
        switch problem {
        case .empty: return "* A name cannot be empty; try another name:\n"
        case .tooLong: return "* That name is longer than \(limits.maxNameCharacters) characters; try another name:\n"
        case .character(let character): return "* A name cannot hold \(Self.describe(character)); try another name:\n"
        }
    }

    static func nameTaken(_ name: String) -> String {
        "* Someone here is already called \(name); try another name:\n"
    }

    static func youAre(_ name: String) -> String {
        "* You are \(name). Type a line to talk; /who lists who is here, /quit leaves.\n"
    }

    static func roster(_ names: [String]) -> String {
        "* Here now (\(names.count)): \(names.joined(separator: ", "))\n"
    }

    static func joined(_ name: String) -> String { "* \(name) joined\n" }
    static func left(_ name: String) -> String { "* \(name) left\n" }
    static func said(_ name: String, _ text: String) -> String { "\(name): \(text)\n" }

    static let help = "* Commands: /who lists who is here, /quit leaves. Anything else is said to the room.\n"
    static let slowDown = "* Slow down: some of your lines were not sent.\n"
    static let bye = "* Bye.\n"
    static let tooManyNames = "* Too many names tried; bye.\n"
    static let noName = "* No name given in time; bye.\n"

    static func lineTooLong(_ limits: ChatLimits) -> String {
        "* That line is longer than \(limits.maxLineBytes) bytes; bye.\n"
    }

    static func full(_ limits: ChatLimits) -> String {
        "* The room is full (\(limits.maxMembers) connections); try again later.\n"
    }

    /// A refused character: printable ASCII as itself, anything else (invisible, control, direction
    /// marks) by its code points, so the refusal itself is safe to print.
    private static func describe(_ character: Character) -> String {
        if character.isASCII, let ascii = character.asciiValue, (0x21...0x7E).contains(ascii) { return "'\(character)'" }
        return character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined(separator: " ")
    }
}
