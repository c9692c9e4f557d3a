import Foundation
import Testing

/// Runs the real-browser suite (Tests/Browser/run_browser_tests.py): headless Chromium loads pages
/// served by `ferry --web` and talks through Ferry over ws:// and wss://, and two pages plus a raw TCP
/// client chat through `ferry demo`, the admin port's live page lists and ends sessions
/// (screenshots go to .build/test-artifacts/), and a page served over HTTP/2 opens its WebSockets as
/// streams of its own connection (RFC 8441). `.ci/run`
/// installs Chromium; on a machine without it this test is skipped (and says so).
@Suite("Browser (headless Chromium)")
struct BrowserTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(
        .enabled(if: BrowserTests.chromium != nil, OutsideTools.installHint("chromium")),
        .enabled(if: OutsideTools.python("websockets"), OutsideTools.pipHint("websockets"))
    )
    func pagesAndDemoInHeadlessChromium() async throws {
        let ferry = try #require(FerryExecutable.path, "the ferry executable was not built next to the tests")
        let script = Repository.tests.appendingPathComponent("Browser/run_browser_tests.py")
        // The suite takes a minute or more: waited for off the concurrency pool.
        let (status, log) = try await BlockingWork.run { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script.path, ferry]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        // The demo's screenshots are review artifacts: say where they are even when all passes.
        for line in log.split(separator: "\n") where line.contains("screenshot:") {
            print("browser suite \(line.trimmingCharacters(in: .whitespaces))")
        }
        #expect(status == 0, "browser suite failed:\n\(log)")
        #expect(log.contains("PASS page"), "\(log)")
        #expect(log.contains("PASS demo"), "\(log)")
        #expect(log.contains("PASS admin"), "\(log)")
        #expect(log.contains("PASS http2"), "\(log)")
    }
}
