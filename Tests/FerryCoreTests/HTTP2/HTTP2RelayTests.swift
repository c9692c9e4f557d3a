import Foundation
import NIOCore
import Testing

@testable import FerryCore

/// WebSockets over HTTP/2 (RFC 8441), driven by an independent client: Python's `h2` (PyPI) through
/// Tests/Interop/h2_websocket_client.py, against a relay with TLS on a loopback port. Each test reads
/// the client's `RESULT key=value` lines.
@Suite(
    "HTTP/2: WebSockets as streams (Python h2 client)",
    .serialized,
    .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")),
    .enabled(if: OutsideTools.python("h2"), OutsideTools.pipHint("h2"))
)
struct HTTP2RelayTests {
    /// A relay with TLS (HTTP/2 on unless `http2` is false), `/echo` to an echo backend and `/sink`
    /// to a backend that never reads.
    static func with<T: Sendable>(
        limits: Limits = Relay.testLimits(),
        http2: Bool = true,
        clientCA: String? = nil,
        extraRoutes: [Route] = [],
        auth: AuthOptions = AuthOptions(),
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let pki = try TestPKI.shared()
        let echo = try await TestBackend.start(.echo)
        let sink = try await TestBackend.start(.sink(keepAtMost: 0, paused: true))
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: [
                Route(path: "/echo", target: echo.target),
                Route(path: "/sink", target: sink.target),
            ] + extraRoutes,
            limits: limits,
            tls: TLSRelay.options([pki.localhost]) {
                $0.http2 = http2
                if let clientCA {
                    $0.clientCAPath = clientCA
                    $0.clientAuthentication = .optional
                }
            },
            auth: auth
        )
        let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
        do {
            let result = try await Relay.serving(server, body)
            await echo.close()
            await sink.close()
            return result
        } catch {
            await echo.close()
            await sink.close()
            throw error
        }
    }

    /// What the client printed: every `RESULT` pair (a later value for a key wins), the whole output.
    struct ClientRun {
        var results: [String: String]
        var output: String
        var status: Int32

        subscript(_ key: String) -> String? { self.results[key] }
        func int(_ key: String) -> Int? { self.results[key].flatMap { Int($0) } }
        var passed: Bool { self.output.contains("PASS") && !self.output.contains("FAIL") }
    }

    static let script = Repository.tests.appendingPathComponent("Interop/h2_websocket_client.py").path

    static func client(
        _ mode: String,
        _ relay: RunningRelay,
        certificate: TestCertificatePair? = nil,
        origin: String? = nil,
        _ arguments: String...
    ) async throws -> ClientRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, mode, "\(relay.address.port ?? 0)"] + arguments
        var environment = ProcessInfo.processInfo.environment
        if let certificate {
            environment["H2_CLIENT_CERT"] = certificate.certificatePath
            environment["H2_CLIENT_KEY"] = certificate.keyPath
        }
        if let origin { environment["H2_ORIGIN"] = origin }
        process.environment = environment
        return try await Self.run(process)
    }

    static func run(_ process: Process) async throws -> ClientRun {
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = try await BlockingWork.run { () throws -> Data? in
            let data = try output.fileHandleForReading.readToEnd()
            process.waitUntilExit()
            return data
        }
        let text = String(decoding: data ?? Data(), as: UTF8.self)
        var results: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("RESULT ") {
            for pair in line.dropFirst(7).split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { results[String(parts[0])] = String(parts[1]) }
            }
        }
        return ClientRun(results: results, output: text, status: process.terminationStatus)
    }

    static func metric(_ relay: RunningRelay, _ name: String) -> Double? {
        for line in relay.server.environment.metrics.exposition().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test("16 WebSockets at once on one HTTP/2 connection: every byte echoed, each closed cleanly, one connection counted")
    func manyStreams() async throws {
        try await Self.with { relay in
            let run = try await Self.client("streams", relay, "16")
            #expect(run["enable_connect_protocol"] == "1", "\(run.output)")
            #expect(run["max_concurrent_streams"] == "100")
            #expect(run["statuses"] == "200", "\(run.output)")
            #expect(run.int("intact") == 16, "\(run.output)")
            #expect(run["close_codes"] == "1000", "\(run.output)")
            #expect(run.int("ended") == 16, "every stream ends with END_STREAM: \(run.output)")
            #expect(run.passed, "\(run.output)")
            #expect(Self.metric(relay, "ferry_http2_connections_total") == 1)
            #expect(Self.metric(relay, "ferry_http2_sessions_total") == 16)
            #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
        }
    }

    @Test("16 MiB through one stream, far past its flow-control window: Ferry returns window as it relays")
    func bulkPastTheWindow() async throws {
        try await Self.with { relay in
            let run = try await Self.client("bulk", relay, "16")
            #expect(run.passed, "\(run.output)")
            #expect(run["intact"] == "1", "\(run.output)")
        }
    }

    @Test("a stalled backend shuts only its own stream's window; a stream beside it on the same connection keeps echoing")
    func stalledStreamBesideFlowingOne() async throws {
        try await Self.with { relay in
            let run = try await Self.client("stall", relay)
            #expect(run.passed, "\(run.output)")
            #expect(run["window_shut"] == "1", "the stalled stream's window must close: \(run.output)")
            // What a stalled stream takes in is its window, Ferry's buffer and the kernel's socket
            // buffers: bounded, nowhere near the 256 MiB the client would send.
            let stalled = try #require(run.int("stalled_bytes"))
            #expect(stalled < 32 * 1024 * 1024, "\(run.output)")
            #expect(run.int("echoes") == 50, "\(run.output)")
        }
    }

    @Test("a client that resets a session's stream (RST_STREAM) ends that session only; the next stream works")
    func clientReset() async throws {
        try await Self.with { relay in
            let run = try await Self.client("reset", relay)
            #expect(run.passed, "\(run.output)")
            #expect(await Relay.eventually(timeout: .seconds(5)) { relay.server.environment.registry.count == 0 })
        }
    }

    @Test("rapid reset (CVE-2023-44487): streams opened and reset at once end in GOAWAY ENHANCE_YOUR_CALM; the relay goes on")
    func rapidReset() async throws {
        try await Self.with { relay in
            let run = try await Self.client("rapid-reset", relay)
            #expect(run["goaway"] == "11", "\(run.output)")
            #expect(run["closed"] == "1", "\(run.output)")
            #expect((run.int("resets") ?? .max) < 5000, "\(run.output)")
            let after = try await Self.client("streams", relay, "2")
            #expect(after.passed, "\(after.output)")
            #expect(await Relay.eventually(timeout: .seconds(5)) { relay.server.environment.registry.count == 0 })
        }
    }

    @Test("a CONTINUATION flood is cut off after a few frames, not read to the end")
    func continuationFlood() async throws {
        try await Self.with { relay in
            let run = try await Self.client("continuation", relay)
            #expect(run["closed"] == "1", "\(run.output)")
            #expect((run.int("continuation_frames") ?? .max) < 10_000, "\(run.output)")
        }
    }

    @Test("PING and SETTINGS floods close the connection")
    func controlFrameFloods() async throws {
        try await Self.with { relay in
            for mode in ["ping-flood", "settings-flood"] {
                let run = try await Self.client(mode, relay)
                #expect(run["closed"] == "1", "\(mode): \(run.output)")
                #expect((run.int("frames") ?? .max) < 100_000, "\(mode): \(run.output)")
            }
            let after = try await Self.client("streams", relay, "1")
            #expect(after.passed, "\(after.output)")
        }
    }

    @Test("an HPACK bomb (a small block that decodes past SETTINGS_MAX_HEADER_LIST_SIZE) is refused; other connections are served")
    func hpackBomb() async throws {
        try await Self.with { relay in
            let run = try await Self.client("hpack-bomb", relay)
            #expect(run["max_header_list_size"] == "16384")
            #expect(run["status"] == "None", "no answer for the bomb: \(run.output)")
            #expect(run["goaway"] != "none", "\(run.output)")
            #expect(run["after"] == "200", "\(run.output)")
        }
    }

    @Test("--max-streams-per-connection 3 is announced; a client within it is served, one that opens past it loses the connection (PROTOCOL_ERROR)")
    func maxStreams() async throws {
        try await Self.with(limits: Relay.testLimits { $0.maxStreamsPerConnection = 3 }) { relay in
            let within = try await Self.client("streams", relay, "3")
            #expect(within["max_concurrent_streams"] == "3", "\(within.output)")
            #expect(within.passed, "\(within.output)")
            // RFC 9113 §5.1.2: past the announced limit is a protocol error; swift-nio-http2 ends the
            // connection for it (browsers queue their streams instead).
            let past = try await Self.client("open", relay, "5", "/echo", "binary", "0")
            #expect(past["goaway"] == "1", "\(past.output)")
            #expect(await Relay.eventually(timeout: .seconds(5)) { relay.server.environment.registry.count == 0 })
        }
    }

    @Test("each stream counts against --max-connections: the third of three on one connection gets 503")
    func streamsCountAsConnections() async throws {
        try await Self.with(limits: Relay.testLimits { $0.maxConnections = 2 }) { relay in
            let run = try await Self.client("open", relay, "3", "/echo", "binary", "0")
            let lines = run.output.split(separator: "\n").filter { $0.hasPrefix("RESULT stream=") }
            #expect(lines.filter { $0.contains("status=200") }.count == 2, "\(run.output)")
            #expect(lines.filter { $0.contains("status=503") }.count == 1, "\(run.output)")
        }
    }

    @Test("refusals over HTTP/2 carry the same statuses: 404 for no route, 401 without a token; a token in the query or a bearer. subprotocol lets it in")
    func refusalsAndTokens() async throws {
        try await AuthTempFolder.with { folder in
            let echo = try await TestBackend.start(.echo)
            defer { Task { await echo.close() } }
            let token = authRandomToken("h2")
            let file = try folder.write("tokens", "\(token): \(echo.target)\n")
            let auth = AuthRelay.options { $0.tokenFilePath = file }
            let secure = try Route.parse("/secure=\(echo.target),auth=token")
            try await Self.with(extraRoutes: [secure], auth: auth) { relay in
                let noRoute = try await Self.client("open", relay, "1", "/nope", "binary", "0")
                let noToken = try await Self.client("open", relay, "1", "/secure", "binary", "0")
                let queryToken = try await Self.client("open", relay, "1", "/secure?token=\(token)", "binary", "0")
                let subprotocolToken = try await Self.client("open", relay, "1", "/secure", "binary, bearer.\(token)", "0")
                let wrongToken = try await Self.client("open", relay, "1", "/secure?token=wrong-\(token)", "binary", "0")
                #expect(noRoute.output.contains("status=404"), "\(noRoute.output)")
                #expect(noToken.output.contains("status=401"), "\(noToken.output)")
                #expect(queryToken.output.contains("status=200"), "\(queryToken.output)")
                #expect(subprotocolToken.output.contains("status=200"), "\(subprotocolToken.output)")
                #expect(wrongToken.output.contains("status=403"), "\(wrongToken.output)")
            }
        }
    }

    @Test("client-cn over HTTP/2: the name comes from the connection's verified certificate (alice 200, mallory and no certificate 403)")
    func clientCertificateName() async throws {
        let pki = try TestPKI.shared()
        let echo = try await TestBackend.start(.echo)
        let named = try Route.parse("/alice=\(echo.target),client-cn=alice")
        try await Self.with(clientCA: pki.caPath, extraRoutes: [named]) { relay in
            let alice = try await Self.client("open", relay, certificate: pki.alice, "1", "/alice", "binary", "0")
            let mallory = try await Self.client("open", relay, certificate: pki.mallory, "1", "/alice", "binary", "0")
            let nobody = try await Self.client("open", relay, "1", "/alice", "binary", "0")
            #expect(alice.output.contains("status=200"), "\(alice.output)")
            #expect(mallory.output.contains("status=403"), "\(mallory.output)")
            #expect(nobody.output.contains("status=403"), "\(nobody.output)")
        }
        await echo.close()
    }

    @Test("the Origin rule holds over HTTP/2: another site's page gets 403")
    func foreignOrigin() async throws {
        try await Self.with { relay in
            let run = try await Self.client("open", relay, origin: "https://evil.example", "1", "/echo", "binary", "0")
            #expect(run.output.contains("status=403"), "\(run.output)")
        }
    }

    @Test("a client that never reads (zero window) stops Ferry reading its backend: the backend's writes stall, bounded")
    func zeroWindowClient() async throws {
        let flood = try await TestBackend.start(.flood(total: 512 * 1024 * 1024, pattern: BytePattern(seed: 8)))
        let route = Route(path: "/flood", target: flood.target)
        try await Self.with(extraRoutes: [route]) { relay in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Self.script, "zero-window", "\(relay.address.port ?? 0)", "4"]
            async let run = Self.run(process)
            #expect(await Relay.eventually(timeout: .seconds(10)) { relay.server.environment.registry.count == 1 })
            try await Task.sleep(for: .seconds(2))
            let early = flood.bytesWritten
            try await Task.sleep(for: .seconds(1))
            let later = flood.bytesWritten
            let result = try await run
            #expect(result["status"] == "200", "\(result.output)")
            // The client took at most its 1 KiB window; the relay holds at most its buffer; the rest
            // of what the backend wrote sits in the kernel's socket buffers. Nothing grows.
            #expect((result.int("received") ?? .max) <= 64 * 1024, "\(result.output)")
            #expect(later - early < 1024 * 1024, "the backend kept writing: \(early) then \(later) bytes")
            #expect(later < 64 * 1024 * 1024, "\(later) bytes written")
        }
        await flood.close()
    }

    @Test("pages and /healthz are served on the same HTTP/2 connection kind")
    func plainRequests() async throws {
        try await Self.with { relay in
            let health = try await Self.client("get", relay, "/healthz")
            #expect(health["status"] == "200", "\(health.output)")
            #expect(health["ended"] == "1", "\(health.output)")
        }
    }

    @Test("--http2 off: ALPN offers only http/1.1")
    func http2Off() async throws {
        try await Self.with(http2: false) { relay in
            let run = try await Self.client("streams", relay, "1")
            #expect(run.output.contains("FAIL alpn=http/1.1"), "\(run.output)")
        }
    }

    @Test("drain: GOAWAY at once (no new streams), then each open session gets close 1001 at --drain-timeout")
    func drain() async throws {
        try await Self.with { relay in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Self.script, "open", "\(relay.address.port ?? 0)", "2", "/echo"]
            async let run = Self.run(process)
            #expect(await Relay.eventually(timeout: .seconds(10)) { relay.server.environment.registry.count == 2 })
            #expect(relay.server.environment.http2Connections.count == 1)
            await relay.server.windDown(.drain(delay: .zero, timeout: .seconds(1)))
            let result = try await run
            #expect(result["goaway"] == "0", "GOAWAY NO_ERROR: \(result.output)")
            #expect(result["close_codes"] == "1001,1001", "\(result.output)")
        }
    }
}
