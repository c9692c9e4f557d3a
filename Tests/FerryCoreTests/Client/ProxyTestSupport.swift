// A real HTTP CONNECT proxy for the client's proxy tests: Debian's tinyproxy, run in the foreground
// on loopback with a throw-away configuration, and a proxy that accepts and never answers.

import Foundation
import NIOCore
import NIOPosix
import Testing

/// tinyproxy on 127.0.0.1, admitting only loopback clients, CONNECT allowed to every port (no
/// `ConnectPort` line: its default list is 443 and 563 only), Basic credentials if given. Its log
/// (level Connect: one line per request) tells which CONNECTs it saw.
final class TinyProxy: Sendable {
    private let child: ChildProcessBox
    let port: Int
    private let folder: String

    private init(child: ChildProcessBox, port: Int, folder: String) {
        self.child = child
        self.port = port
        self.folder = folder
    }

    var url: String { "http://127.0.0.1:\(self.port)" }

    /// Starts it and waits (bounded) until it accepts connections. The port is one that was free a
    /// moment ago (tinyproxy takes no port 0); another is tried if it was taken meanwhile.
    static func start(user: String? = nil, password: String? = nil) async throws -> TinyProxy {
        let program = try #require(OutsideTools.program("tinyproxy"), "tinyproxy is installed")
        let folder = try TLSFiles.makeDirectory("tinyproxy")
        var output = ""
        for _ in 0..<3 {
            let port = try await FreePort.on()
            var lines = [
                "Port \(port)", "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30", "MaxClients 32",
                "LogLevel Connect", "DisableViaHeader Yes",
            ]
            if let user, let password { lines.append("BasicAuth \(user) \(password)") }
            let configuration = "\(folder)/tinyproxy.conf"
            try (lines.joined(separator: "\n") + "\n").write(toFile: configuration, atomically: true, encoding: .utf8)
            let child = try ChildProcess(executable: program, arguments: ["-d", "-c", configuration], logPath: "\(folder)/tinyproxy-\(port).log")
            if await Self.accepts(port: port, while: child) {
                return TinyProxy(child: ChildProcessBox(child), port: port, folder: folder)
            }
            await child.stop(signal: SIGKILL)
            output = child.output
        }
        try? FileManager.default.removeItem(atPath: folder)
        throw IntegrationTimeout(what: "tinyproxy to listen (it said: \(output.suffix(500)))")
    }

    /// Polls a TCP connect to the port for up to 10 s, while the process runs.
    private static func accepts(port: Int, while child: ChildProcess) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(10))
        while clock.now < deadline && child.isRunning {
            if let channel = try? await ClientBootstrap(group: IntegrationLoops.group).connectTimeout(.milliseconds(500)).connect(host: "127.0.0.1", port: port).get() {
                try? await channel.close()
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// What it has logged so far.
    var log: String { self.child.value.output }

    /// The `CONNECT` requests it received, by target (`127.0.0.1:PORT`).
    func connects(to target: String) -> Int {
        self.log.split(separator: "\n").filter { $0.contains("Request") && $0.contains("CONNECT \(target) ") }.count
    }

    /// SIGTERM, then SIGKILL: tinyproxy lingers for seconds after a tunnel, and keeps nothing worth
    /// a clean exit.
    func stop() async {
        await self.child.value.stop(signal: SIGTERM, grace: .milliseconds(200))
        try? FileManager.default.removeItem(atPath: self.folder)
    }

    /// Runs `body` with a started proxy, and always stops it.
    static func with<T>(user: String? = nil, password: String? = nil, _ body: (TinyProxy) async throws -> T) async throws -> T {
        let proxy = try await Self.start(user: user, password: password)
        do {
            let result = try await body(proxy)
            await proxy.stop()
            return result
        } catch {
            await proxy.stop()
            throw error
        }
    }
}

/// ``ChildProcess`` is used from one test at a time; the box lets ``TinyProxy`` be shared by closures.
private final class ChildProcessBox: @unchecked Sendable {
    let value: ChildProcess
    init(_ value: ChildProcess) { self.value = value }
}

/// A "proxy" that accepts connections and never answers: the connect timeout must cover CONNECT.
final class SilentProxy: Sendable {
    let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    var port: Int { self.channel.localAddress!.port! }

    static func start() async throws -> SilentProxy {
        let channel = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentProxy(channel: channel)
    }

    func close() async {
        try? await self.channel.close()
    }
}
