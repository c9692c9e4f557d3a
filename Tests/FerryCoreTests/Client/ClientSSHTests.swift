import Foundation
import NIOCore
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// OpenSSH's sshd run as a plain process on a loopback port, with a host key and one authorized
/// client key made for the test in a throw-away folder; it admits the user the tests run as.
struct TestSSHServer {
    let folder: String
    let port: Int
    /// The private key ssh logs in with.
    let clientKey: String
    let user: String

    /// Makes the keys and the configuration, starts `sshd -D -e -f CONFIG`, waits for its
    /// "Server listening" line, runs `body`, and stops sshd whatever happens.
    static func with<T>(_ body: (TestSSHServer) async throws -> T) async throws -> T {
        let sshd = try #require(OutsideTools.program("sshd"))
        try Self.ensurePrivilegeSeparationDirectory()
        return try await InteropServer.inFolder("client-ssh") { folder in
            try Self.keygen(folder + "/host_ed25519")
            try Self.keygen(folder + "/client_ed25519")
            try FileManager.default.copyItem(atPath: folder + "/client_ed25519.pub", toPath: folder + "/authorized_keys")
            let port = try await FreePort.on()
            let config = """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(folder)/host_ed25519
                AuthorizedKeysFile \(folder)/authorized_keys
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PidFile \(folder)/sshd.pid

                """
            try config.write(toFile: folder + "/sshd_config", atomically: true, encoding: .utf8)
            let server = TestSSHServer(folder: folder, port: port, clientKey: folder + "/client_ed25519", user: try Self.currentUser())
            return try await InteropServer.with(sshd, ["-D", "-e", "-f", folder + "/sshd_config"], folder: folder, log: "sshd.log", ready: .says("Server listening on 127.0.0.1 port \(port).")) { _ in
                try await body(server)
            }
        }
    }

    /// Run as root, sshd wants its privilege separation directory (`/run/sshd`, which Debian's
    /// service makes at boot); run as another user it needs none and admits only that user.
    static func ensurePrivilegeSeparationDirectory() throws {
        guard geteuid() == 0 else { return }
        let path = "/run/sshd"
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }

    static func keygen(_ path: String) throws {
        let keygen = try #require(OutsideTools.program("ssh-keygen"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: keygen)
        process.arguments = ["-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f", path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw InteropStartFailure(command: [keygen, "-f", path], reason: "exited with status \(process.terminationStatus)", output: "") }
    }

    static func currentUser() throws -> String {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { throw POSIXFailure(call: "getpwuid", code: errno) }
        return String(cString: name)
    }

    /// Runs `ssh` to this server with `proxyCommand` as its ProxyCommand, running `command` there;
    /// the exit status (nil: still running after `timeout`, then killed) and what ssh wrote
    /// (standard output, then standard error).
    func ssh(proxyCommand: String, _ command: String, timeout: Duration = .seconds(30)) async throws -> (status: Int32?, output: String, errors: String) {
        let ssh = try #require(OutsideTools.program("ssh"))
        let arguments = [
            "-F", "/dev/null", "-i", self.clientKey, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
            "-o", "ProxyCommand=\(proxyCommand)", "-p", "\(self.port)", "\(self.user)@127.0.0.1", command,
        ]
        let outputPath = self.folder + "/ssh-\(UUID().uuidString.prefix(8))"
        let status = try await Self.spawnAndWait([ssh] + arguments, output: outputPath + ".out", errors: outputPath + ".err", timeout: timeout)
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return (status, read(outputPath + ".out"), read(outputPath + ".err"))
    }

    /// Runs `command` with posix_spawn and waits for it with waitpid. Not Foundation's Process: it
    /// learns of a child's exit when a socket the child inherited closes, and ssh hands its
    /// descriptors to the ProxyCommand, so an exited ssh stayed "running" (an unreaped zombie).
    /// The exit status, or nil if it was still running at `timeout` (it is killed then).
    static func spawnAndWait(_ command: [String], output: String, errors: String, timeout: Duration) async throws -> Int32? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test process ignores SIGPIPE and its threads block signals: the child starts with neither.
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw POSIXFailure(call: "posix_spawn \(command[0])", code: spawned) }
        var status: Int32 = 0
        let exited = await Relay.eventually(timeout: timeout) { waitpid(pid, &status, WNOHANG) == pid }
        guard exited else {
            kill(pid, SIGKILL)
            _ = await Relay.eventually(timeout: .seconds(5)) { waitpid(pid, &status, WNOHANG) == pid }
            return nil
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import: a signal's death is 128 + signal.
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}

extension ClientTests {
    /// ssh for real: `ssh -o ProxyCommand='ferry connect …'` through an in-process Ferry relay to an
    /// sshd on loopback, running a command that prints a computed line and counts a megabyte.
    @Suite(
        "ssh through ferry connect (OpenSSH's ssh and sshd)",
        .enabled(if: OutsideTools.have("sshd", "ssh", "ssh-keygen"), OutsideTools.installHint("sshd", "ssh", "ssh-keygen")),
        .enabled(if: FerryExecutable.path != nil, "needs the ferry executable built with the tests"),
        .timeLimit(.minutes(2))
    )
    struct SSHTests {
        static let command = "echo ferry-$((6*7)); head -c 1000000 /dev/zero | wc -c"

        /// The lines ssh printed, trimmed.
        static func lines(_ output: String) -> [String] {
            output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        }

        /// `'PATH'` for a shell (ssh runs ProxyCommand with the user's shell).
        static func quoted(_ text: String) -> String {
            "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }

        @Test("ws://: ssh logs in through the relay's /ssh route and runs a command")
        func plain() async throws {
            let ferry = try #require(FerryExecutable.path)
            try await TestSSHServer.with { sshd in
                try await Relay.with(routes: [try Route.parse("/ssh=127.0.0.1:\(sshd.port)")]) { relay in
                    let proxy = "\(Self.quoted(ferry)) connect \(ClientRun.url(relay, path: "/ssh"))"
                    let result = try await sshd.ssh(proxyCommand: proxy, Self.command)
                    #expect(result.status == 0, "ssh: \(result.output)\n\(result.errors)")
                    #expect(Self.lines(result.output) == ["ferry-42", "1000000"], "\(result.output)\n\(result.errors)")
                }
            }
        }

        @Test(
            "wss:// with --ca and --token-file through an auth=token route; a wrong token is refused with the relay's 403",
            .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl"))
        )
        func tlsAndToken() async throws {
            let ferry = try #require(FerryExecutable.path)
            let pki = try TestPKI.shared()
            try await TestSSHServer.with { sshd in
                let token = authRandomToken("ssh")
                let tokens = sshd.folder + "/relay-tokens"
                try "\(token): 127.0.0.1:\(sshd.port)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
                let good = sshd.folder + "/my-token"
                try "\(token)\n".write(toFile: good, atomically: true, encoding: .utf8)
                let wrong = sshd.folder + "/not-my-token"
                try "not-\(token)\n".write(toFile: wrong, atomically: true, encoding: .utf8)
                let configuration = try FerryConfiguration(
                    listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                    routes: [try Route.parse("/ssh=127.0.0.1:\(sshd.port),auth=token")],
                    limits: Relay.testLimits(),
                    tls: TLSRelay.options([pki.localhost]),
                    auth: AuthRelay.options { $0.tokenFilePath = tokens }
                )
                let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
                try await Relay.serving(server) { relay in
                    let url = "wss://localhost:\(relay.address.port!)/ssh"
                    let proxy = "\(Self.quoted(ferry)) connect \(url) --ca \(Self.quoted(pki.caPath)) --token-file \(Self.quoted(good))"
                    let result = try await sshd.ssh(proxyCommand: proxy, Self.command)
                    #expect(result.status == 0, "ssh: \(result.output)\n\(result.errors)")
                    #expect(Self.lines(result.output) == ["ferry-42", "1000000"], "\(result.output)\n\(result.errors)")

                    let refusedProxy = "\(Self.quoted(ferry)) connect \(url) --ca \(Self.quoted(pki.caPath)) --token-file \(Self.quoted(wrong))"
                    let refused = try await sshd.ssh(proxyCommand: refusedProxy, Self.command)
                    #expect(refused.status == 255, "ssh's status when its ProxyCommand fails: \(refused.output)\n\(refused.errors)")
                    #expect(refused.errors.contains("ferry connect: the relay refused the session: 403 "), "\(refused.errors)")
                    #expect(!refused.output.contains("ferry-42"))
                }
            }
        }
    }
}
