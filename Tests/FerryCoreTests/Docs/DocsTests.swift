import Foundation
import Testing

/// The reference pages are checked against the binary and the tree, so they cannot drift: every flag
/// of `ferry --help` (and of `ferry connect --help`, in its own section) has its row in docs/flags.md
/// and every row there is a real flag; every relative link in README.md and docs/ leads to a file
/// that exists.
@Suite("Documentation matches the code")
struct DocsTests {
    static func read(_ relative: String) throws -> String {
        try String(contentsOf: Repository.root.appendingPathComponent(relative), encoding: .utf8)
    }

    /// The long flags `ferry --help` lists: option lines start with exactly two spaces and the flag
    /// (or `-h, --help`), then its `<value>`; wrapped help text is indented further, and the help
    /// text that follows on the flag's own line ends the names, so a `--flag` it mentions is not one.
    static func helpFlags(_ help: String) -> Set<String> {
        var flags: Set<String> = []
        for line in help.split(separator: "\n") where line.hasPrefix("  -") && !line.hasPrefix("   ") {
            for word in line.split(separator: " ") {
                let name = word.trimmingCharacters(in: CharacterSet(charactersIn: ","))
                if name.hasPrefix("--") {
                    flags.insert(name)
                } else if !name.hasPrefix("-") && !name.hasPrefix("<") {
                    break
                }
            }
        }
        return flags
    }

    /// The flags docs/flags.md documents: table rows that start with "| `--NAME".
    static func documentedFlags(_ page: String) -> Set<String> {
        var flags: Set<String> = []
        for line in page.split(separator: "\n") where line.hasPrefix("| `--") {
            let name = line.dropFirst(3).prefix { $0 != " " && $0 != "`" && $0 != "=" }
            flags.insert(String(name))
        }
        return flags
    }

    /// docs/flags.md's relay part, and its `ferry connect` section (the page's last).
    static func flagPages() throws -> (relay: String, connect: String) {
        let page = try Self.read("docs/flags.md")
        let parts = page.components(separatedBy: "\n## `ferry connect`")
        return (parts[0], parts.count > 1 ? parts[1] : "")
    }

    static func compare(help: String, command: String, documented: Set<String>, section: String) {
        let inHelp = Self.helpFlags(help)
        for flag in inHelp.subtracting(documented).sorted() {
            Issue.record("\(flag) is in \(command) --help but has no row in \(section)")
        }
        for flag in documented.subtracting(inHelp).sorted() {
            Issue.record("\(section) has a row for \(flag), which \(command) --help does not list")
        }
    }

    @Test("docs/flags.md has one row per flag of 'ferry --help', and no row for a flag that does not exist", .enabled(if: FerryExecutable.path != nil, "the ferry executable is not built (swift build)"))
    func flagTable() async throws {
        let (status, help) = try await FerryBinary.run(["--help"])
        #expect(status == 0)
        #expect(Self.helpFlags(help).count > 50, "\(help)")
        Self.compare(help: help, command: "ferry", documented: Self.documentedFlags(try Self.flagPages().relay), section: "docs/flags.md")
    }

    @Test("docs/flags.md's ferry connect section has one row per flag of 'ferry connect --help'", .enabled(if: FerryExecutable.path != nil, "the ferry executable is not built (swift build)"))
    func connectFlagTable() async throws {
        let (status, help) = try await FerryBinary.run(["connect", "--help"])
        #expect(status == 0)
        #expect(Self.helpFlags(help).contains("--proxy"), "\(help)")
        let section = try Self.flagPages().connect
        #expect(!section.isEmpty, "docs/flags.md has a ferry connect section")
        Self.compare(help: help, command: "ferry connect", documented: Self.documentedFlags(section), section: "docs/flags.md (ferry connect)")
    }

    @Test("README.md: the demo command and the test command a newcomer pastes")
    func readmeCommands() throws {
        let readme = try Self.read("README.md")
        #expect(readme.contains("swift run -c release ferry demo"))
        #expect(readme.contains("./scripts/test"))
        #expect(FileManager.default.isExecutableFile(atPath: Repository.root.appendingPathComponent("scripts/test").path))
    }

    @Test("every relative link in README.md, SECURITY.md, BENCHMARKS.md and docs/*.md leads to an existing file")
    func relativeLinks() throws {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Repository.root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
        let pages = ["README.md", "SECURITY.md", "BENCHMARKS.md", "deploy/README.md"] + docs
        let link = /\]\(([^)#\s]+)(#[^)\s]*)?\)/
        for page in pages {
            let text = try Self.read(page)
            let folder = URL(fileURLWithPath: page).deletingLastPathComponent().relativePath
            for match in text.matches(of: link) {
                let target = String(match.1)
                if target.contains("://") || target.hasPrefix("mailto:") { continue }
                let path = Repository.root.appendingPathComponent(folder == "." ? target : folder + "/" + target).path
                #expect(FileManager.default.fileExists(atPath: path), "\(page) links to \(target), which does not exist")
            }
        }
    }
}
