import Foundation
import Logging
import NIOCore
import Testing

@testable import FerryCore

/// What a new user sees first: `--version`, `--help`, the start-up lines, and logs that say what
/// happened without noise (issue 14).
@Suite("Start-up: --version, --help and the first log lines", .enabled(if: FerryExecutable.path != nil, "the ferry executable is not built (swift build)"))
struct StartupTests {
    @Test("--version prints 'ferry VERSION' and exits 0")
    func version() async throws {
        let (status, output) = try await FerryBinary.run(["--version"])
        #expect(status == 0)
        #expect(output == "ferry \(FerryVersion.current)\n", "\(output)")
    }

    /// `--help` groups options under titles, most used first, and fits 80 columns (piped output is
    /// 80 wide; ArgumentParser wraps longer lines without indenting them).
    @Test("--help: options under topic titles in order, every line within 80 columns")
    func helpGroups() async throws {
        let (status, output) = try await FerryBinary.run(["--help"])
        #expect(status == 0)
        let titles = [
            "USAGE:", "LISTENING AND ROUTES:", "ORIGINS AND NAMES:", "LIMITS:", "TIMEOUTS AND KEEPALIVE:", "TLS:", "AUTHENTICATION:",
            "SERVING FILES:", "PRODUCTION:", "LIFETIME AND RECORDING:", "LOGGING:", "OPTIONS:",
        ]
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let positions = titles.map { title in lines.firstIndex { $0.hasPrefix(title) } }
        #expect(!positions.contains(nil), "missing titles: \(zip(titles, positions).filter { $0.1 == nil }.map(\.0))\n\(output)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "titles out of order:\n\(output)")
        for line in lines {
            #expect(line.count <= 80, "longer than 80 columns: \(line)")
        }
        // One section per option: the first, most used, flags land where a newcomer looks first.
        let listening = try #require(positions[1])
        #expect(lines[listening + 1].hasPrefix("  --listen"), "\(lines[listening + 1])")
        #expect(output.contains("--version"))
    }

    @Test("a decimal size unit is a start-up error naming the flag and the binary unit")
    func decimalSize() async throws {
        let (status, output) = try await FerryBinary.run(["--buffer-size", "1MB", "6080", "localhost:5900"])
        #expect(status == 2)
        #expect(output.contains("ferry: --buffer-size 1MB:") && output.contains("1MiB"), "\(output)")
    }

    /// Starts the binary with `arguments` on a free port; `body` gets the process and port once it listens.
    static func withRelay(_ arguments: [String], _ body: (ChildProcess, Int) async throws -> Void) async throws {
        let executable = try #require(FerryExecutable.path)
        let directory = try TLSFiles.makeDirectory("startup-relay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (process, port) = try await FerryBinary.spawn(executable, arguments: arguments, directory: directory)
        defer { kill(process.pid, SIGKILL) }
        #expect(await FerryBinary.waitForListening(process, port: port), "not listening:\n\(process.output)")
        try await body(process, port)
    }

    @Test("start-up lines: the version first, the listening line says what it serves; no descriptor-limit warning by default")
    func startupLines() async throws {
        try await Self.withRelay(["--route", "/=127.0.0.1:9"]) { process, port in
            let lines = process.output.split(separator: "\n")
            #expect(lines.first?.contains("info ferry: starting version=\(FerryVersion.current)") == true, "\(process.output)")
            #expect(process.output.contains("listening address=127.0.0.1:\(port) serves=ws"), "\(process.output)")
            // The default 10,000 sessions against a 20,000-descriptor limit is 32 short: not worth a warning.
            if FileLimit.verdict(sessions: FileLimit.sessions(allowedBy: Self.descriptorLimit()), maxConnections: 10_000) != .tooLow {
                #expect(!process.output.contains("warning"), "\(process.output)")
            }
        }
    }

    @Test("SIGINT stops at once and says so: no drain announced, status 0")
    func sigint() async throws {
        try await Self.withRelay(["--route", "/=127.0.0.1:9"]) { process, _ in
            kill(process.pid, SIGINT)
            let status = await process.waitForExit(timeout: .seconds(3))
            #expect(status == 0, "\(process.output)")
            #expect(process.output.contains("SIGINT: stopping now"), "\(process.output)")
            #expect(!process.output.contains("draining"), "\(process.output)")
        }
    }

    @Test("a browser's /favicon.ico miss on a relay without --web is not logged at info")
    func faviconQuiet() async throws {
        try await Self.withRelay(["--route", "/ws=127.0.0.1:9"]) { process, port in
            let response = try await PlainHTTP.get(try SocketAddress(ipAddress: "127.0.0.1", port: port), path: "/favicon.ico")
            #expect(response.status == 404)
            // An upgrade to a missing route is still news: it is logged, and proves the log is live.
            let client = try await RawClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port))
            try await client.send(RawUpgrade.request(path: "/nowhere", headers: [("Host", "127.0.0.1:\(port)")]))
            #expect(await client.responseStatus(timeout: .seconds(5)) == 404)
            await client.close()
            #expect(await process.waitForOutput("path=/nowhere", timeout: .seconds(5)), "\(process.output)")
            #expect(!process.output.contains("favicon"), "\(process.output)")
        }
    }

    static func descriptorLimit() -> Int {
        var limit = rlimit()
        #if os(Linux)
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        getrlimit(RLIMIT_NOFILE, &limit)
        #endif
        return Int(clamping: limit.rlim_max)
    }

    @Test("descriptor limit: enough, nearly (no warning), too low (a warning with numbers to use)")
    func fileLimitVerdict() {
        #expect(FileLimit.sessions(allowedBy: 20_000) == 9_968)
        #expect(FileLimit.needed(forMaxConnections: 10_000) == 20_064)
        #expect(FileLimit.verdict(sessions: 10_000, maxConnections: 10_000) == .enough)
        #expect(FileLimit.verdict(sessions: 9_968, maxConnections: 10_000) == .nearly)
        #expect(FileLimit.verdict(sessions: 9_000, maxConnections: 10_000) == .nearly)
        #expect(FileLimit.verdict(sessions: 8_999, maxConnections: 10_000) == .tooLow)
        #expect(FileLimit.verdict(sessions: 480, maxConnections: 10_000) == .tooLow)
    }

    @Test("/metrics carries ferry_build_info with the version")
    func buildInfo() {
        let metrics = FerryMetrics()
        #expect(metrics.exposition().contains("ferry_build_info{version=\"\(FerryVersion.current)\"} 1"), "\(metrics.exposition())")
    }
}
