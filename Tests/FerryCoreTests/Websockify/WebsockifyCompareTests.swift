// Side by side with the real websockify: Tests/Interop/websockify_compare.py runs websockify and Ferry
// (through a `websockify` link) with the same command lines in front of a recording backend, drives
// the same client through both, and compares what each backend and the client received.

import Foundation
import Testing

@testable import FerryCore

extension WebsockifyProcessTests {
    // websockify, websockets (the client) and jwcrypto (the JWTs) for python3; `scripts/test` installs them.
    @Suite("Side by side with websockify", .enabled(if: WebsockifyProcessTests.ferryBuilt, "the ferry executable is not built (swift build)"))
    struct Compare {
        @Test(
            "same command lines, same client: byte-identical streams at the backend and the client (plain, token folder, JWT key files)",
            .enabled(if: OutsideTools.python("websockify", "websockets", "jwcrypto"), OutsideTools.pipHint("websockify", "websockets", "jwcrypto")),
            .timeLimit(.minutes(3))
        )
        func sideBySide() async throws {
            let folder = try WebsockifyFolder("compare")
            defer { folder.remove() }
            let script = Repository.tests.appendingPathComponent("Interop/websockify_compare.py").path
            let compare = try ChildProcess(
                executable: "/usr/bin/env",
                arguments: ["python3", script, "--ferry", folder.websockify],
                directory: folder.path,
                logPath: folder.file("compare.log")
            )
            let status = await compare.waitForExit(timeout: .seconds(150))
            await compare.stop(signal: SIGINT, grace: .seconds(3))
            let output = compare.output
            #expect(status == 0, "websockify_compare.py: status \(String(describing: status))\n\(output)")
            #expect(!output.contains("FAIL"), "\(output)")
            for scenario in ["plain", "token-folder", "jwt-rsa-keyfile", "jwt-symmetric-keyfile"] {
                #expect(output.contains("PASS \(scenario): both backends received byte-identical streams"), "\(scenario):\n\(output)")
                #expect(output.contains("PASS \(scenario): the client received identical bytes from both"), "\(scenario):\n\(output)")
            }
            #expect(output.contains("PASS token-folder: Ferry refuses an unknown token with 403"), "\(output)")
        }
    }
}
