import ArgumentParser
import FerryCore

/// Counts and sizes: every one is bounded. Shown under "LIMITS" in `ferry --help`.
public struct LimitFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Sessions open at once, handshakes included; more get 503. (default: 10000)", valueName: "n"))
    var maxConnections: String?

    @Option(help: ArgumentHelp("Connections open at once from one client address, handshakes included: a direct client's excess connections are closed at accept; a client behind a trusted proxy or PROXY header gets 503. 0: no limit. (default: 0)", valueName: "n"))
    var maxConnectionsPerIp: String?

    @Option(help: ArgumentHelp("Handshakes per second from one client address; more get 429. 0: no limit. (default: 0)", valueName: "n"))
    var maxHandshakesPerSecondPerIp: String?

    @Option(help: ArgumentHelp("Bytes queued per direction per session before the relay stops reading the other side, e.g. 256KiB; with the read under way when it fills, under 2 × SIZE. (default: 256KiB)", valueName: "size"))
    var bufferSize: String?

    @Option(help: ArgumentHelp("Largest client message; bigger ones are closed with 1009. 0 means no limit (payloads are streamed). (default: 0)", valueName: "size"))
    var maxMessageSize: String?

    @Option(help: ArgumentHelp("Largest handshake request head; bigger ones get 431. (default: 16KiB)", valueName: "size"))
    var maxHeaderSize: String?

    @Option(help: ArgumentHelp("WebSocket sessions and page requests open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). (default: 100)", valueName: "n"))
    var maxStreamsPerConnection: String?

    /// Sets the counts and sizes given; the others keep their defaults.
    func apply(to limits: inout Limits) throws(ConfigurationError) {
        limits.maxConnections = try FlagValue.count("--max-connections", self.maxConnections, default: limits.maxConnections, minimum: 1)
        limits.maxConnectionsPerIP = try FlagValue.count("--max-connections-per-ip", self.maxConnectionsPerIp, default: limits.maxConnectionsPerIP, minimum: 0)
        limits.maxHandshakesPerSecondPerIP = try FlagValue.count(
            "--max-handshakes-per-second-per-ip", self.maxHandshakesPerSecondPerIp, default: limits.maxHandshakesPerSecondPerIP, minimum: 0
        )
        limits.bufferSize = try FlagValue.size("--buffer-size", self.bufferSize, default: limits.bufferSize, minimum: 4096)
        limits.maxMessageSize = try FlagValue.size("--max-message-size", self.maxMessageSize, default: limits.maxMessageSize, minimum: 0)
        limits.maxHeaderSize = try FlagValue.size("--max-header-size", self.maxHeaderSize, default: limits.maxHeaderSize, minimum: 1024)
        limits.maxStreamsPerConnection = try FlagValue.count(
            "--max-streams-per-connection", self.maxStreamsPerConnection, default: limits.maxStreamsPerConnection, minimum: 1
        )
        guard limits.maxStreamsPerConnection <= 10_000 else {
            throw ConfigurationError(
                flag: "--max-streams-per-connection", value: "\(limits.maxStreamsPerConnection)", problem: "more than 10000 streams on one connection",
                expected: "e.g. --max-streams-per-connection 100; to serve more sessions, clients open more connections"
            )
        }
    }
}
