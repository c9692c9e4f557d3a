import Foundation
import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    /// `ferry connect` against the real websockify (`python3 -m websockify`, 0.13 from PyPI, which
    /// `scripts/test` installs): plain, with its TokenFile plugin (the token in `?token=`), and with
    /// `--ssl-only`. websockify forks a process per connection and stops them at SIGTERM.
    @Suite(
        "Against websockify (python3 -m websockify)",
        .enabled(if: OutsideTools.python("websockify"), OutsideTools.pipHint("websockify")),
        .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"),
        .timeLimit(.minutes(3))
    )
    struct WebsockifyServerTests {
        /// Runs `websockify OPTIONS 127.0.0.1:PORT [TARGET]` on a free port in `folder` until `body`
        /// is done; `body` gets the port and the process (its log).
        static func withWebsockify<T>(_ options: [String], target: String?, folder: String, _ body: (Int, ChildProcess) async throws -> T) async throws -> T {
            let port = try await FreePort.on()
            let arguments = ["python3", "-m", "websockify"] + options + ["127.0.0.1:\(port)"] + (target.map { [$0] } ?? [])
            return try await InteropServer.with("/usr/bin/env", arguments, folder: folder, log: "websockify-\(port).log", ready: .accepts(port: port)) { process in
                try await body(port, process)
            }
        }

        /// An echo backend and websockify in front of it (`websockify 127.0.0.1:PORT 127.0.0.1:ECHO`
        /// plus `options`); `body` gets websockify's port, its process and the backend.
        static func withEcho<T>(_ options: [String] = [], _ body: (Int, ChildProcess, TestBackend) async throws -> T) async throws -> T {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            return try await InteropServer.inFolder("client-websockify") { folder in
                try await Self.withWebsockify(options, target: "127.0.0.1:\(backend.address.port!)", folder: folder) { port, process in
                    try await body(port, process, backend)
                }
            }
        }

        @Test("plain, --listen: bytes come back exact (nothing, one byte, 1 MiB)", arguments: [0, 1, 1 << 20])
        func plainListener(size: Int) async throws {
            try await Self.withEcho { port, websockify, backend in
                let bytes = InteropSession.bytes(size, seed: 0x17_0001 &+ UInt64(size))
                let echoed = try await InteropSession.echoThroughListener(try ClientRun.configuration("ws://127.0.0.1:\(port)/"), bytes)
                #expect(echoed == bytes, "\(echoed?.count ?? -1) bytes back of \(size)\n\(websockify.output)")
                // Nothing sent still opens a session: websockify reached its target.
                #expect(await backend.waitForAccepted(1), "\(websockify.output)")
            }
        }

        @Test("plain, stdio (the ferry executable): bytes come back exact, standard input's EOF ends with status 0", arguments: [0, 5, 1 << 20])
        func plainStdio(size: Int) async throws {
            try await Self.withEcho { port, websockify, backend in
                let bytes = InteropSession.bytes(size, seed: 0x17_0002 &+ UInt64(size))
                let result = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/websockify", "--log-level", "warning"], bytes)
                #expect(result.echoed == bytes, "\(result.echoed.count) bytes back of \(size)")
                #expect(result.status == ConnectExitStatus.ended.rawValue, "stderr: \(result.errors)\nwebsockify: \(websockify.output)")
                #expect(result.errors.isEmpty, "\(result.errors)")
                #expect(await backend.waitForAccepted(1))
            }
        }

        @Test("websockify 0.13 picks 'binary' from what ferry connect offers, the bearer token beside it included")
        func subprotocols() async throws {
            try await InteropServer.inFolder("client-websockify") { folder in
                let backend = try await TestBackend.start(.echo)
                defer { Task { await backend.close() } }
                let token = authRandomToken("sub")
                try FileManager.default.createDirectory(atPath: folder + "/tokens", withIntermediateDirectories: true)
                try "\(token): 127.0.0.1:\(backend.address.port!)\n".write(toFile: folder + "/tokens/target", atomically: true, encoding: .utf8)
                try await Self.withWebsockify(["--token-plugin", "TokenFile", "--token-source", folder + "/tokens"], target: nil, folder: folder) { port, websockify in
                    // The very request ferry connect writes for `?token=T --token T` (token in the URL and in a subprotocol).
                    var options = UpgradeRequestOptions()
                    options.token = token
                    let request = ClientUpgradeRequest(url: try WebSocketURL.parse("ws://127.0.0.1:\(port)/?token=\(token)"), options: options)
                    #expect(request.offeredSubprotocols == ["binary", "bearer.\(token)"])
                    var bytes = ByteBuffer()
                    request.write(into: &bytes)
                    let raw = try await RawClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port))
                    defer { Task { await raw.close() } }
                    try await raw.send(String(buffer: bytes))
                    #expect(await raw.responseStatus(timeout: .seconds(10)) == 101, "\(raw.receivedText)\n\(websockify.output)")
                    let head = raw.receivedText.lowercased()
                    #expect(head.contains("\r\nsec-websocket-protocol: binary\r\n"), "\(raw.receivedText)")
                    #expect(head.contains("\r\nsec-websocket-accept: \(request.expectedAccept.lowercased())\r\n"), "\(raw.receivedText)")

                    // And the session through the executable with the same URL and flags.
                    let line = Array("both carriers\n".utf8)
                    let result = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/?token=\(token)", "--token", token], line)
                    #expect(result.echoed == line)
                    #expect(result.status == ConnectExitStatus.ended.rawValue, "\(result.errors)")
                }
            }
        }

        /// A TokenFile source (`file`: one file; `folder`: a folder of files, as websockify reads both)
        /// with `good` on the echo backend; `body` gets websockify's port, its process and the token.
        static func withTokenFile<T>(_ shape: String, _ body: (Int, ChildProcess, String) async throws -> T) async throws -> T {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            return try await InteropServer.inFolder("client-websockify-token") { folder in
                let good = authRandomToken("good")
                let line = "# websockify token file\n\(good): 127.0.0.1:\(backend.address.port!)\n"
                let source: String
                if shape == "folder" {
                    source = folder + "/tokens"
                    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
                    try line.write(toFile: source + "/vm1", atomically: true, encoding: .utf8)
                } else {
                    source = folder + "/tokens.cfg"
                    try line.write(toFile: source, atomically: true, encoding: .utf8)
                }
                return try await Self.withWebsockify(["--token-plugin", "TokenFile", "--token-source", source], target: nil, folder: folder) { port, websockify in
                    try await body(port, websockify, good)
                }
            }
        }

        @Test("--token-plugin TokenFile: --token-in query and ?token= in the URL reach the target", arguments: ["file", "folder"])
        func tokenWorks(shape: String) async throws {
            try await Self.withTokenFile(shape) { port, websockify, token in
                let url = "ws://127.0.0.1:\(port)/websockify"
                let bytes = InteropSession.bytes(64 * 1024, seed: 0x17_0003)
                let flags = try await InteropSession.echoThroughStdio([url, "--token", token, "--token-in", "query"], bytes)
                #expect(flags.echoed == bytes)
                #expect(flags.status == ConnectExitStatus.ended.rawValue, "\(flags.errors)\n\(websockify.output)")

                let inURL = try await InteropSession.echoThroughStdio(["\(url)?token=\(token)"], bytes)
                #expect(inURL.echoed == bytes)
                #expect(inURL.status == ConnectExitStatus.ended.rawValue, "\(inURL.errors)")

                // --listen, in this process: the token is added to each session's request.
                let configuration = try ClientRun.configuration(url) {
                    $0.request.token = token
                    $0.request.tokenCarrier = .query
                }
                #expect(try await InteropSession.echoThroughListener(configuration, bytes) == bytes, "\(websockify.output)")
            }
        }

        /// What websockify does with a token it does not know, or none: it logs why and hangs up
        /// before answering the upgrade (no HTTP status), so ferry connect cannot tell a refusal
        /// from a server that does not speak WebSocket: status 3, not 5.
        @Test("--token-plugin TokenFile: an unknown or missing token: websockify hangs up unanswered, status 3")
        func tokenRefused() async throws {
            try await Self.withTokenFile("file") { port, websockify, token in
                let url = "ws://127.0.0.1:\(port)/websockify"
                let hangUp = "ferry connect: the server did not open a WebSocket session: the connection closed before an answer to the upgrade\n"

                let wrong = try await InteropSession.echoThroughStdio([url, "--token", "not-" + token, "--token-in", "query"], Array("x".utf8))
                #expect(wrong.status == ConnectExitStatus.couldNotConnect.rawValue, "\(wrong.errors)")
                #expect(wrong.errors == hangUp, "\(wrong.errors)")
                #expect(wrong.echoed.isEmpty)
                #expect(await websockify.waitForOutput("Token 'not-\(token)' not found"), "\(websockify.output)")

                let missing = try await InteropSession.echoThroughStdio([url], [])
                #expect(missing.status == ConnectExitStatus.couldNotConnect.rawValue, "\(missing.errors)")
                #expect(missing.errors == hangUp, "\(missing.errors)")
                #expect(await websockify.waitForOutput("Token not present"), "\(websockify.output)")

                // websockify reads the token from the query only: the other carriers are no token to it.
                for carrier in ["subprotocol", "header", "cookie"] {
                    let elsewhere = try await InteropSession.echoThroughStdio([url, "--token", token, "--token-in", carrier], [])
                    #expect(elsewhere.status == ConnectExitStatus.couldNotConnect.rawValue, "\(carrier): \(elsewhere.errors)")
                    #expect(elsewhere.errors == hangUp, "\(carrier): \(elsewhere.errors)")
                }
                let notPresent = await websockify.waitForOutput(timeout: .seconds(10)) { log in
                    let count = log.components(separatedBy: "Token not present").count - 1
                    return count >= 4 ? count : nil
                }
                #expect(notPresent == 4, "one 'Token not present' for no token and for each other carrier:\n\(websockify.output)")
            }
        }

        @Test(
            "--ssl-only --cert --key: wss:// with --ca works; no --ca is status 4; ws:// is reset: status 3",
            .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl"))
        )
        func sslOnly() async throws {
            let pki = try TestPKI.shared()
            try await Self.withEcho(["--ssl-only", "--cert", pki.localhost.certificatePath, "--key", pki.localhost.keyPath]) { port, websockify, _ in
                let bytes = InteropSession.bytes(256 * 1024, seed: 0x17_0004)
                for host in ["127.0.0.1", "localhost"] {
                    let trusted = try await InteropSession.echoThroughStdio(["wss://\(host):\(port)/", "--ca", pki.caPath], bytes)
                    #expect(trusted.echoed == bytes, "\(host)")
                    #expect(trusted.status == ConnectExitStatus.ended.rawValue, "\(host): \(trusted.errors)\n\(websockify.output)")
                }
                let listener = try ClientRun.configuration("wss://localhost:\(port)/") { $0.tls.caPath = pki.caPath }
                #expect(try await InteropSession.echoThroughListener(listener, bytes) == bytes)

                let untrusted = try await InteropSession.echoThroughStdio(["wss://127.0.0.1:\(port)/"], [])
                #expect(untrusted.status == ConnectExitStatus.tlsFailed.rawValue, "\(untrusted.errors)")
                #expect(untrusted.errors.contains("ferry connect: TLS handshake with 127.0.0.1:\(port) failed: the relay's certificate could not be verified"), "\(untrusted.errors)")

                // websockify peeks at the first bytes, sees no TLS, and closes with the request unread: a reset.
                let plain = try await InteropSession.echoThroughStdio(["ws://127.0.0.1:\(port)/"], [])
                #expect(plain.status == ConnectExitStatus.couldNotConnect.rawValue, "\(plain.errors)")
                #expect(plain.errors == "ferry connect: could not connect to 127.0.0.1:\(port): connection reset by peer\n", "\(plain.errors)")
                #expect(await websockify.waitForOutput("non-SSL connection received but disallowed"), "\(websockify.output)")
            }
        }
    }
}
