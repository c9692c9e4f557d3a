import FerryCore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// A relay started for one measurement: a process from a command template (so any relay can be
/// measured the same way, websockify included), or Ferry inside the benchmark's own process (only for
/// the smoke test: its memory figures then include the benchmark's).
public enum RelayLauncher: Sendable {
    /// `{port}` is replaced by the port to listen on and `{target}` by the backend's `127.0.0.1:PORT`.
    case command(name: String, template: String)
    /// A relay that reads a configuration file (HAProxy): for each start, `config` (with the same
    /// placeholders replaced) is written to a temporary directory of its own, `{config}` in the
    /// template is replaced by the file's path, and the directory is removed when the relay stops.
    case configured(name: String, template: String, config: String)
    case inProcess

    public var name: String {
        switch self {
        case .command(let name, _), .configured(let name, _, _): return name
        case .inProcess: return "ferry (in-process)"
        }
    }

    /// Starts the relay; with `tls`, it serves that certificate (a template gets `{cert}` and `{key}`
    /// replaced, or Ferry's `--tls-cert`/`--tls-key` appended when it has no such placeholders; a
    /// configured relay's file gets them replaced, and nothing is appended).
    public func start(target: Int, bufferSize: Int?, tls: BenchCertificates.Pair? = nil, group: EventLoopGroup) async throws -> RunningRelay {
        switch self {
        case .inProcess:
            var limits = Limits()
            if let bufferSize { limits.bufferSize = bufferSize }
            limits.maxConnections = 100_000
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: target))],
                limits: limits,
                tls: tls.map { ListenerTLSOptions(pairs: [.init(certificatePath: $0.certificatePath, keyPath: $0.keyPath)]) }
            )
            var logger = Logger(label: "bench-relay")
            logger.logLevel = .error
            let server = try FerryServer(configuration: configuration, group: group, logger: logger)
            let port = try await server.start()[0].port!
            return RunningRelay(port: port, process: nil, server: server)
        case .command(_, let template):
            return try await Self.startProcess(template: template, config: nil, target: target, tls: tls, group: group)
        case .configured(_, let template, let config):
            return try await Self.startProcess(template: template, config: config, target: target, tls: tls, group: group)
        }
    }

    private static func startProcess(
        template: String,
        config: String?,
        target: Int,
        tls: BenchCertificates.Pair?,
        group: EventLoopGroup
    ) async throws -> RunningRelay {
        let port = try Self.freePort()
        func placeholdersReplaced(_ text: String) -> String {
            var text = text
            if let tls {
                text = text.replacingOccurrences(of: "{cert}", with: tls.certificatePath)
                    .replacingOccurrences(of: "{key}", with: tls.keyPath)
            }
            return text
                .replacingOccurrences(of: "{port}", with: "\(port)")
                .replacingOccurrences(of: "{target}", with: "127.0.0.1:\(target)")
        }
        var command = template
        if tls != nil && config == nil && !command.contains("{cert}") { command += " --tls-cert {cert} --tls-key {key}" }
        command = placeholdersReplaced(command)
        var directory: URL?
        if let config {
            let made = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: made, withIntermediateDirectories: false)
            directory = made
            let file = made.appendingPathComponent("relay.cfg")
            do {
                try placeholdersReplaced(config).write(to: file, atomically: false, encoding: .utf8)
            } catch {
                try? FileManager.default.removeItem(at: made)
                throw error
            }
            command = command.replacingOccurrences(of: "{config}", with: file.path)
        }
        let process = Process()
        // Foundation starts the child in a process group of its own; stopping signals that whole
        // group, so whatever the command started (a wrapper script's relay and profiler, forked
        // children) stops with it.
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec " + command]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        let relay = RunningRelay(port: port, process: process, server: nil, directory: directory)
        do {
            try process.run()
        } catch {
            await relay.stop()
            throw error
        }
        let output = RelayErrorOutput(reading: errors)
        // Wait until it accepts connections.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !process.isRunning {
                let text = await output.text(waitingUpTo: .seconds(1))
                await relay.stop()
                throw BenchError.relayDidNotStart("\(command): exited: \(text)")
            }
            if (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get().close().get()) != nil {
                return relay
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await relay.stop()
        throw BenchError.relayDidNotStart("\(command): not listening after 15 s")
    }

    /// A loopback port free a moment ago (bound and released).
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }
}

/// A started relay: its port and, for a process, its memory.
public final class RunningRelay: @unchecked Sendable {
    public let port: Int
    private let process: Process?
    private let server: FerryServer?
    /// A configured relay's temporary directory, removed when it stops.
    private let directory: URL?

    init(port: Int, process: Process?, server: FerryServer?, directory: URL? = nil) {
        self.port = port
        self.process = process
        self.server = server
        self.directory = directory
    }

    /// Memory in bytes of the relay process and its children (websockify forks), as PSS; of this
    /// process for an in-process relay.
    public func residentBytes() -> UInt64 {
        let pid = self.process?.processIdentifier ?? getpid()
        var total = Self.rss(of: pid)
        for child in Self.children(of: pid) { total += Self.rss(of: child) }
        return total
    }

    /// CPU time in nanoseconds used so far by the relay process and its children (every thread, from
    /// the scheduler's own accounting, so short transfers are not rounded to clock ticks); nil for an
    /// in-process relay, whose time cannot be told from the benchmark's. Children that already exited
    /// are not counted, so read it while the measured connections are still open.
    public func cpuNanoseconds() -> UInt64? {
        guard let pid = self.process?.processIdentifier else { return nil }
        return ([pid] + Self.children(of: pid)).reduce(0) { $0 + Self.cpuNanoseconds(of: $1) }
    }

    static func cpuNanoseconds(of pid: Int32) -> UInt64 {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return 0 }
        return tasks.reduce(0) { total, task in
            // schedstat: time on CPU (ns), time waiting to run (ns), time slices.
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? ""
            return total + (text.split(separator: " ").first.flatMap { UInt64($0) } ?? 0)
        }
    }

    public func stop() async {
        if let process, process.isRunning {
            // The whole group: the relay and anything it started.
            let group = -process.processIdentifier
            kill(group, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            kill(group, SIGKILL)
        }
        if let server { await server.stop(timeout: .seconds(2)) }
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Proportional set size (shared pages split among the processes that map them), so that forked
    /// children are not each charged the whole interpreter; VmRSS where smaps_rollup is missing.
    static func rss(of pid: Int32) -> UInt64 {
        if let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8),
            let kib = Self.field("Pss:", in: rollup)
        {
            return kib * 1024
        }
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        return (Self.field("VmRSS:", in: status) ?? 0) * 1024
    }

    private static func field(_ name: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
        }
        return nil
    }

    static func children(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
        let direct = text.split(separator: " ").compactMap { Int32($0) }
        return direct + direct.flatMap { Self.children(of: $0) }
    }
}
