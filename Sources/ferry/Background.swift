import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// websockify's `-D`: start in the background and return once the relay is listening.
///
/// Scripts run `websockify -D …` and go on to start the VNC server, so staying in the foreground
/// would hang them. Forking a process that already runs threads is unsafe, so Ferry starts itself
/// again instead (a new session, standard input and output on /dev/null, no other inherited file
/// descriptors) with its standard error on
/// a pipe: the parent passes on what the child says while it starts, and exits 0 when the child
/// reports that it listens (a NUL byte), or with the child's status when it fails. The child then
/// writes its logs only to `--log-file`, as websockify's daemon does. A supervisor (systemd, Docker)
/// is still the better way to run it.
enum Background {
    static let childVariable = "FERRY_BACKGROUND_CHILD"

    /// True in the process started by ``start(arguments:)``.
    static var isChild: Bool { getenv(Self.childVariable) != nil }

    /// Starts this program again, with the same arguments, in the background; never returns.
    static func start() -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { Self.fail("cannot create a pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], STDERR_FILENO)
        // Nothing else the caller gave this process stays open in the background (a supervisor that
        // waits for a pipe to close would otherwise wait for the relay to end).
        Self.closeOnExec()
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID: leave the terminal's session.
        setenv(Self.childVariable, "1", 1)
        let program = "/proc/self/exe"
        let argv = ([CommandLine.arguments.first ?? "ferry"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, program, &actions, &attributes, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(pipeEnds[1])
        guard result == 0 else { Self.fail("cannot start in the background: \(String(cString: strerror(result)))") }

        // Pass on what the child says until it reports readiness (NUL) or ends.
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(pipeEnds[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            let chunk = buffer[..<count]
            if let ready = chunk.firstIndex(of: 0) {
                _ = chunk[..<ready].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
                FerryLogHandler.standardError("ferry: running in the background as process \(child)\n")
                exit(0)
            }
            _ = chunk.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        let exited = status & 0x7f == 0
        exit(exited ? max(1, (status >> 8) & 0xff) : 1)
    }

    /// Marks every descriptor above standard error close-on-exec (the pipe end is moved onto
    /// descriptor 2 in the child, which clears the flag there).
    private static func closeOnExec() {
        guard let folder = opendir("/proc/self/fd") else { return }
        defer { closedir(folder) }
        let own = dirfd(folder)
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            guard let descriptor = Int32(name), descriptor > 2, descriptor != own else { continue }
            _ = fcntl(descriptor, F_SETFD, fcntl(descriptor, F_GETFD) | FD_CLOEXEC)
        }
    }

    /// In the background child, once listening: tell the parent, and stop writing to its pipe.
    static func reportReady() {
        guard Self.isChild else { return }
        unsetenv(Self.childVariable)
        var ready: UInt8 = 0
        _ = write(STDERR_FILENO, &ready, 1)
        let null = open("/dev/null", O_WRONLY)
        if null >= 0 {
            dup2(null, STDERR_FILENO)
            close(null)
        }
    }

    private static func fail(_ message: String) -> Never {
        FerryLogHandler.standardError("ferry: -D: \(message)\n")
        exit(1)
    }
}

