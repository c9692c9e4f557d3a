import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` on a free loopback port, started by a test and always stopped: no
/// persistence, optionally a password and keyspace notifications. `redis-cli` drives it as an
/// operator (or the application that issues tokens) would.
final class RedisTestServer: @unchecked Sendable {
    let port: Int
    let password: String?
    let notifications: Bool
    /// With a certificate, the server speaks only TLS (`--tls-port`; no plaintext port).
    let tls: TLS?
    let folder: String
    private var process: ChildProcess

    /// The server's certificate and the CA that `redis-cli` trusts for it.
    struct TLS: Sendable {
        var pair: TestCertificatePair
        var caPath: String
    }

    private init(port: Int, password: String?, notifications: Bool, tls: TLS?, folder: String, process: ChildProcess) {
        self.port = port
        self.password = password
        self.notifications = notifications
        self.tls = tls
        self.folder = folder
        self.process = process
    }

    /// `redis://[:PASSWORD@]127.0.0.1:PORT/0` (`rediss://` with TLS) plus `suffix` (e.g. `?namespace=ns`).
    func url(password: String? = nil, host: String = "127.0.0.1", suffix: String = "") -> String {
        let secret = password ?? self.password
        return (self.tls == nil ? "redis://" : "rediss://") + (secret.map { ":\($0)@" } ?? "") + "\(host):\(self.port)/0" + suffix
    }

    static func start(password: String? = nil, notifications: Bool = true, tls: TLS? = nil) async throws -> RedisTestServer {
        let folder = try TLSFiles.makeDirectory("redis")
        let port = try await FreePort.on()
        let process = try Self.launch(port: port, password: password, notifications: notifications, tls: tls, folder: folder)
        let server = RedisTestServer(port: port, password: password, notifications: notifications, tls: tls, folder: folder, process: process)
        try await server.waitUntilReady()
        return server
    }

    /// Runs `body` with a started server, and stops it whatever happens.
    static func with<T>(password: String? = nil, notifications: Bool = true, tls: TLS? = nil, _ body: (RedisTestServer) async throws -> T) async throws -> T {
        let server = try await Self.start(password: password, notifications: notifications, tls: tls)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    private static func launch(port: Int, password: String?, notifications: Bool, tls: TLS?, folder: String) throws -> ChildProcess {
        var arguments = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder, "--daemonize", "no"]
        if let tls {
            arguments += [
                "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", tls.pair.certificatePath, "--tls-key-file", tls.pair.keyPath,
                "--tls-ca-cert-file", tls.caPath, "--tls-auth-clients", "no",
            ]
        } else {
            arguments += ["--port", "\(port)"]
        }
        if let password { arguments += ["--requirepass", password] }
        arguments += ["--notify-keyspace-events", notifications ? "Kgx" : ""]
        let program = try #require(OutsideTools.program("redis-server"))
        return try ChildProcess(executable: program, arguments: arguments, logPath: folder + "/redis-\(UUID().uuidString.prefix(4)).log")
    }

    /// Polls PING (every 50 ms, at most 30 s: the first seconds of a full test run, when every suite
    /// starts at once, have been seen to stall a whole 10 s budget).
    private func waitUntilReady() async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(30))
        while clock.now < deadline {
            if (try? await self.cli("PING")) == "PONG" { return }
            guard self.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisTestFailure(what: "redis-server did not answer PING on port \(self.port): \(self.process.output)")
    }

    /// Stops the server at once (SIGKILL: it keeps nothing on disk, and a test process may block
    /// SIGTERM for its children); the folder stays for ``restart()``.
    func stop(removingFolder: Bool = true) async {
        await self.process.stop(signal: SIGKILL, grace: .seconds(5))
        if removingFolder { try? FileManager.default.removeItem(atPath: self.folder) }
    }

    /// Stops the server and starts a new, empty one on the same port.
    func restart() async throws {
        await self.stop(removingFolder: false)
        self.process = try Self.launch(port: self.port, password: self.password, notifications: self.notifications, tls: self.tls, folder: self.folder)
        try await self.waitUntilReady()
    }

    /// Runs `redis-cli ARGS` (at most 10 s) and returns its output, trimmed.
    @discardableResult
    func cli(_ arguments: String...) async throws -> String {
        var all = ["-h", "127.0.0.1", "-p", "\(self.port)"]
        if let password { all += ["-a", password, "--no-auth-warning"] }
        if let tls { all += ["--tls", "--cacert", tls.caPath] }
        let program = try #require(OutsideTools.program("redis-cli"))
        let child = try ChildProcess(executable: program, arguments: all + arguments, logPath: self.folder + "/cli-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(atPath: child.logPath) }
        guard await child.waitForExit(timeout: .seconds(10)) != nil else {
            await child.stop(signal: SIGKILL)
            throw RedisTestFailure(what: "redis-cli \(arguments.first ?? "") did not finish")
        }
        return child.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct RedisTestFailure: Error, CustomStringConvertible {
    var what: String
    var description: String { self.what }
}
