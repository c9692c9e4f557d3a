import ArgumentParser
import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Servers that end by themselves (websockify's --idle-timeout, --timeout, --run-once) and session recording. Shown under "LIFETIME AND RECORDING" in `ferry --help`.
public struct LifetimeFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Exit once no session has been open for this long (websockify's --idle-timeout).", valueName: "duration"))
    var exitWhenIdle: String?

    @Option(help: ArgumentHelp("Stop accepting connections this long after starting; exit when the last session ends (websockify's --timeout).", valueName: "duration"))
    var acceptFor: String?

    @Flag(help: "Stop accepting after the first WebSocket session and exit when it ends.")
    var runOnce = false

    @Option(help: ArgumentHelp("Record every session's payloads to PREFIX.1, PREFIX.2, ... in websockify's --record format. Holds what users type: protect the folder.", valueName: "prefix"))
    var record: String?

    /// `--exit-when-idle`, `--accept-for` and `--run-once`: when the server ends by itself.
    func serverLifetime() throws(ConfigurationError) -> ServerLifetime {
        var lifetime = ServerLifetime()
        if self.exitWhenIdle != nil {
            lifetime.exitWhenIdle = try FlagValue.duration("--exit-when-idle", self.exitWhenIdle, default: .zero, allowZero: false)
        }
        if self.acceptFor != nil {
            lifetime.acceptFor = try FlagValue.duration("--accept-for", self.acceptFor, default: .zero, allowZero: false)
        }
        lifetime.runOnce = self.runOnce
        return lifetime
    }

    /// `--record PREFIX`: the folder must exist; each session writes PREFIX.N.
    func recordPrefix() throws(ConfigurationError) -> String? {
        guard let prefix = self.record else { return nil }
        let folderPath = parentFolder(of: prefix)
        var info = stat()
        guard !prefix.isEmpty, !prefix.hasSuffix("/"), stat(folderPath, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, access(folderPath, W_OK) == 0 else {
            throw ConfigurationError(flag: "--record", value: prefix, problem: "not a file name in a writable folder", expected: "e.g. --record /var/lib/ferry/rec/session (files session.1, session.2, ...)")
        }
        return prefix
    }
}
