import Testing

@testable import FerryCore

/// The `--web` path normaliser: one plain name per segment, nothing that could leave the folder.
/// The combining-mark cases were found by the `path` fuzz target (Fuzz/Crashes/path).
@Suite("Unit: --web path normaliser")
struct StaticPathTests {
    @Test("ordinary paths become their segments")
    func ordinary() {
        #expect(StaticPath.resolve("/") == .file(segments: [], isDirectoryRequest: true))
        #expect(StaticPath.resolve("/vnc.html?x=1") == .file(segments: ["vnc.html"], isDirectoryRequest: false))
        #expect(StaticPath.resolve("//app/./core/") == .file(segments: ["app", "core"], isDirectoryRequest: true))
        #expect(StaticPath.resolve("/%C3%A9t%C3%A9.txt") == .file(segments: ["été.txt"], isDirectoryRequest: false))
    }

    @Test(
        "anything that could leave the folder or reach a dot-file is refused",
        arguments: [
            "/..", "/a/../b", "/%2e%2e/x", "/%2E%2E", "/.git/config", "/a/.env", "/a%2fb", "/a%5cb", "/a\\b", "/a%00b", "relative",
            "/%ZZ",
            // A combining mark after the separator, or a prepend mark before it, joins the two into one
            // grapheme: the checks must still see the separator (they read bytes).
            "/a\\%CC%81", "/%D8%80/../x", "/%D8%80/.git/config", "/x%CC%81/..%CC%81",
        ]
    )
    func refused(target: String) {
        #expect(StaticPath.resolve(target) == .rejected, "\(target)")
    }

    @Test("a combining mark after a slash stays in its own segment: every segment is one plain name")
    func combiningAfterSlash() {
        guard case .file(let segments, _) = StaticPath.resolve("/a/%CC%81") else {
            Issue.record("should resolve")
            return
        }
        #expect(segments == ["a", "\u{301}"])
        #expect(segments.allSatisfy { !$0.utf8.contains(UInt8(ascii: "/")) })
    }
}
