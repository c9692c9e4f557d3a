import Crypto
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// websockify's TokenFile format: `token: host:port` or `token: unix:/path` per line, `#` comments
/// and blank lines ignored. A problem is reported with the file and line number.
public enum TokenFileFormat {
    /// A target as written in a token file, with websockify's `unix_socket:/path` read as `unix:/path`.
    static func normalizedTarget(_ text: Substring) -> String {
        text.hasPrefix("unix_socket:") ? "unix:" + text.dropFirst("unix_socket:".count) : String(text)
    }

    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> [(token: String, target: BackendTarget)] {
        var entries: [(String, BackendTarget)] = []
        // "\r\n" is one Character in a Swift String, so split on any newline rather than on "\n".
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let place = "\(file):\(index + 1)"
            // websockify splits at a colon followed by whitespace (space or tab).
            guard let colon = trimmed.indices.first(where: { index in
                trimmed[index] == ":" && trimmed.index(after: index) < trimmed.endIndex && [" ", "\t"].contains(trimmed[trimmed.index(after: index)])
            }) else {
                throw ConfigurationError(flag: "--token-file", value: place, problem: "no ': ' between token and target", expected: "TOKEN: HOST:PORT or TOKEN: unix:/path")
            }
            let token = String(trimmed[..<colon])
            let targetText = TokenFileFormat.normalizedTarget(trimmed[trimmed.index(after: colon)...].trimmingSpaces)
            guard !token.isEmpty else {
                throw ConfigurationError(flag: "--token-file", value: place, problem: "empty token", expected: "TOKEN: HOST:PORT")
            }
            let target: BackendTarget
            do {
                target = try BackendTarget.parse(targetText, flag: "--token-file", context: place)
            } catch {
                throw ConfigurationError(flag: "--token-file", value: place, problem: "target '\(targetText)': \(error.problem)", expected: "TOKEN: HOST:PORT or TOKEN: unix:/path")
            }
            if case .dynamic = target {
                throw ConfigurationError(flag: "--token-file", value: place, problem: "a token must name a real target", expected: "TOKEN: HOST:PORT")
            }
            entries.append((token, target))
        }
        return entries
    }
}

/// websockify's TokenFileName layout: a file named by its token holds one target.
public enum TokenFilenameFormat {
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> BackendTarget {
        let trimmed = TokenFileFormat.normalizedTarget(text.trimming(\.isWhitespace))
        let target: BackendTarget
        do {
            target = try BackendTarget.parse(trimmed, flag: "--token-filenames", context: file)
        } catch {
            throw ConfigurationError(flag: "--token-filenames", value: file, problem: "target '\(trimmed)': \(error.problem)", expected: "the file holds HOST:PORT or unix:/path")
        }
        if case .dynamic = target {
            throw ConfigurationError(flag: "--token-filenames", value: file, problem: "a token must name a real target", expected: "HOST:PORT")
        }
        return target
    }
}

/// The token table from `--token-file` (a file, or every file in a folder) or `--token-filenames`
/// (a folder, one file per token), re-read when a file changes, never per connection. A reload that
/// fails keeps the last good table; tokens that a good reload no longer contains are reported so
/// their live sessions can be closed.
public final class TokenFileSource: Reloadable, Sendable {
    /// How tokens are laid out on disk.
    public enum Layout: Sendable {
        /// `token: target` lines (websockify's TokenFile).
        case lines
        /// The file name is the token, the content its target (websockify's TokenFileName).
        case fileNames
    }

    private struct Entry: Sendable {
        var token: [UInt8]
        var target: BackendTarget
    }

    private struct State: Sendable {
        /// Keyed by the token's SHA-256, so lookups do not compare secrets byte by byte in a hash table.
        var entries: [SHA256Digest: Entry] = [:]
        var stamps: [String: FileStamp] = [:]
    }

    public let path: String
    public let layout: Layout
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Called with the fingerprints of tokens a reload removed.
    private let onRevoked: @Sendable (Set<String>) -> Void

    public init(
        path: String,
        layout: Layout = .lines,
        logger: Logger,
        onRevoked: @escaping @Sendable (Set<String>) -> Void = { _ in }
    ) throws(ConfigurationError) {
        self.path = path
        self.layout = layout
        self.logger = logger
        self.onRevoked = onRevoked
        let (entries, stamps) = try Self.load(path, layout: layout)
        self.state.withLockedValue { $0 = State(entries: entries, stamps: stamps) }
        logger.info("token file loaded", metadata: ["path": "\(path)", "tokens": "\(entries.count)"])
    }

    /// The target for a token, or nil.
    public func target(for token: String) -> BackendTarget? {
        let bytes = Array(token.utf8)
        let key = SHA256.hash(data: bytes)
        guard let entry = self.state.withLockedValue({ $0.entries[key] }) else { return nil }
        return constantTimeEquals(entry.token, bytes) ? entry.target : nil
    }

    public var count: Int { self.state.withLockedValue { $0.entries.count } }

    /// Reads the file (or folder) again. A file that is gone keeps the tokens it had, loudly: a
    /// deletion is more often a botched deploy or an editor's rename than a revocation, and locking
    /// every client out is the worse mistake. Emptying the file revokes every token.
    @discardableResult
    public func reload() -> Bool {
        if access(self.path, F_OK) != 0 {
            self.state.withLockedValue { $0.stamps = Self.stamps(self.path) }
            self.logger.warning(
                "token file is gone; keeping its tokens until it is back (empty it to revoke them all)",
                metadata: ["path": "\(self.path)", "tokens": "\(self.count)"]
            )
            return false
        }
        do {
            let (entries, stamps) = try Self.load(self.path, layout: self.layout)
            let removed = self.state.withLockedValue { state -> Set<String> in
                // Removed tokens, and tokens now pointing elsewhere, end their sessions.
                let gone = state.entries.filter { entries[$0.key]?.target != $0.value.target }
                    .map { PresentedToken.fingerprint(of: String(decoding: $0.value.token, as: UTF8.self)) }
                state = State(entries: entries, stamps: stamps)
                return Set(gone)
            }
            self.logger.info("token file reloaded", metadata: ["path": "\(self.path)", "tokens": "\(entries.count)", "revoked": "\(removed.count)"])
            if !removed.isEmpty { self.onRevoked(removed) }
            return true
        } catch {
            self.state.withLockedValue { $0.stamps = Self.stamps(self.path) }
            self.logger.error("token file reload failed; keeping the tokens in use", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func reloadIfChanged() {
        if self.state.withLockedValue({ $0.stamps }) != Self.stamps(self.path) { self.reload() }
    }

    private static func load(_ path: String, layout: Layout) throws(ConfigurationError) -> ([SHA256Digest: Entry], [String: FileStamp]) {
        var entries: [SHA256Digest: Entry] = [:]
        for file in Self.files(path) {
            guard let text = Self.read(file) else {
                throw ConfigurationError(flag: layout == .lines ? "--token-file" : "--token-filenames", value: file, problem: "cannot be read")
            }
            let parsed: [(token: String, target: BackendTarget)]
            switch layout {
            case .lines:
                parsed = try TokenFileFormat.parse(text, file: file)
            case .fileNames:
                let token = String(file.split(separator: "/").last ?? "")
                parsed = [(token, try TokenFilenameFormat.parse(text, file: file))]
            }
            for (token, target) in parsed {
                let bytes = Array(token.utf8)
                entries[SHA256.hash(data: bytes)] = Entry(token: bytes, target: target)
            }
        }
        return (entries, Self.stamps(path))
    }

    /// The file itself, or the regular, non-hidden files in the folder, sorted.
    static func files(_ path: String) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [path] }
        guard info.st_mode & S_IFMT == S_IFDIR, let folder = opendir(path) else { return [path] }
        defer { closedir(folder) }
        var names: [String] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix(".") else { continue }
            var fileInfo = stat()
            let full = path.hasSuffix("/") ? path + name : path + "/" + name
            if stat(full, &fileInfo) == 0, fileInfo.st_mode & S_IFMT == S_IFREG { names.append(full) }
        }
        return names.sorted()
    }

    private static func stamps(_ path: String) -> [String: FileStamp] {
        var stamps: [String: FileStamp] = [path: FileStamp(path)]
        for file in Self.files(path) { stamps[file] = FileStamp(file) }
        return stamps
    }

    private static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[..<count])
            if bytes.count > 64 << 20 { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
