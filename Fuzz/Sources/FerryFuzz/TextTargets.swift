import FerryCommandLine
@testable import FerryCore

/// `tokenfile`: websockify's token-file layouts, as `--token-file` and `--token-filenames` read them
/// (``TokenFileFormat`` and ``TokenFilenameFormat``, and ``BackendTarget`` parsing behind both).
enum TokenFileTarget {
    static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        trace("tokenfile: lines \(Result { () throws(ConfigurationError) in try TokenFileFormat.parse(text, file: "fuzz.tokens").map { "\($0.token) -> \($0.target)" } })")
        trace("tokenfile: one target \(Result { () throws(ConfigurationError) in try TokenFilenameFormat.parse(text, file: "fuzz-token") })")
        if let entries = try? TokenFileFormat.parse(text, file: "fuzz.tokens") {
            for (token, target) in entries {
                require(!token.isEmpty, "an empty token was accepted")
                require(!token.contains(where: \.isNewline), "a token spans lines: \(token.debugDescription)")
                if case .dynamic = target { require(false, "a token names the dynamic target") }
            }
        }
        if let target = try? TokenFilenameFormat.parse(text, file: "fuzz-token") {
            if case .dynamic = target { require(false, "a token file names the dynamic target") }
        }
    }
}

/// `path`: the request target a `--web` folder serves files for (``StaticPath``). Every segment it
/// resolves to must be a plain name: not empty, not `.` or `..`, without `/`, `\` or NUL, compared as
/// bytes (what the file system sees).
enum PathTarget {
    static func run(_ input: [UInt8]) {
        let target = String(decoding: input, as: UTF8.self)
        let resolution = StaticPath.resolve(target)
        trace("path: \(target.debugDescription) -> \(resolution)")
        guard case .file(let segments, _) = resolution else { return }
        for segment in segments {
            let bytes = Array(segment.utf8)
            let shown = segment.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
            require(!bytes.isEmpty, "an empty segment from \(target.debugDescription)")
            require(bytes != [0x2E] && bytes != [0x2E, 0x2E], "segment '\(shown)' from \(target.debugDescription)")
            require(!bytes.contains(0x2F), "segment '\(shown)' contains '/' (from \(target.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()))")
            require(!bytes.contains(0x5C), "segment '\(shown)' contains '\\' (from \(target.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()))")
            require(!bytes.contains(0), "segment '\(shown)' contains NUL")
        }
    }
}

/// `websockify`: Ferry started as `websockify …` (``WebsockifyCommandLine``); the input is the argument
/// list, split at NUL and newline bytes. No file exists.
enum WebsockifyTarget {
    static func run(_ input: [UInt8]) {
        let arguments = input.split(omittingEmptySubsequences: false) { $0 == 0 || $0 == 0x0A }
            .map { String(decoding: $0, as: UTF8.self) }
        let result = Result { () throws(ConfigurationError) in try WebsockifyCommandLine.translate(arguments, fileExists: { _ in false }) }
        trace("websockify: \(arguments) -> \(result.map(\.ferryArguments))")
        guard case .success(let translation) = result else { return }
        require(translation.loggableArguments.count == translation.ferryArguments.count, "the logged arguments are not one per argument")
    }
}
