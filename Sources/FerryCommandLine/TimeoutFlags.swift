import ArgumentParser
import FerryCore

/// How long each stage may take, and the pings that find dead clients. Shown under "TIMEOUTS AND KEEPALIVE" in `ferry --help`.
public struct TimeoutFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Time to complete the handshake, backend connect included, e.g. 10s. (default: 10s)", valueName: "duration"))
    var handshakeTimeout: String?

    @Option(help: ArgumentHelp("Time to connect to the backend, capped at what is left of --handshake-timeout; past it the client gets 504. (default: 10s)", valueName: "duration"))
    var connectTimeout: String?

    @Option(help: ArgumentHelp("Close a session with no data either way for this long; 0 turns it off. (default: 1h)", valueName: "duration"))
    var idleTimeout: String?

    @Option(help: ArgumentHelp("Ping a client not heard from for this long; 0 turns pings off. (default: 30s)", valueName: "duration"))
    var pingInterval: String?

    @Option(help: ArgumentHelp("Drop a client that has not answered a ping within this time. (default: 30s)", valueName: "duration"))
    var pingTimeout: String?

    /// Sets the durations given; the others keep their defaults.
    func apply(to limits: inout Limits) throws(ConfigurationError) {
        limits.handshakeTimeout = try FlagValue.duration("--handshake-timeout", self.handshakeTimeout, default: limits.handshakeTimeout, allowZero: false)
        limits.connectTimeout = try FlagValue.duration("--connect-timeout", self.connectTimeout, default: limits.connectTimeout, allowZero: false)
        limits.idleTimeout = try FlagValue.duration("--idle-timeout", self.idleTimeout, default: limits.idleTimeout, allowZero: true)
        limits.pingInterval = try FlagValue.duration("--ping-interval", self.pingInterval, default: limits.pingInterval, allowZero: true)
        limits.pingTimeout = try FlagValue.duration("--ping-timeout", self.pingTimeout, default: limits.pingTimeout, allowZero: false)
    }
}
