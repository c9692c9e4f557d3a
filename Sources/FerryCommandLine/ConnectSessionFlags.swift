import ArgumentParser
import FerryCore

/// `ferry connect`'s timers and buffers. Shown under "Timeouts, keepalive and buffers".
public struct ConnectSessionFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Ping the relay after this long without hearing from it, so idle sessions survive load balancers that cut silent connections; 0 turns it off. (default: 30s)", valueName: "duration"))
    var pingInterval: String?

    @Option(help: ArgumentHelp("Give up on a relay that has not answered a ping within this time. (default: 30s)", valueName: "duration"))
    var pingTimeout: String?

    @Option(help: ArgumentHelp("Time for TCP connect, TLS handshake and upgrade together. (default: 10s)", valueName: "duration"))
    var connectTimeout: String?

    @Option(help: ArgumentHelp("Bytes queued per direction per session before reading pauses. (default: 256KiB)", valueName: "size"))
    var bufferSize: String?

    func apply(to configuration: inout ConnectConfiguration) throws(ConfigurationError) {
        configuration.pingInterval = try FlagValue.duration("--ping-interval", self.pingInterval, default: configuration.pingInterval, allowZero: true)
        configuration.pingTimeout = try FlagValue.duration("--ping-timeout", self.pingTimeout, default: configuration.pingTimeout, allowZero: false)
        configuration.connectTimeout = try FlagValue.duration("--connect-timeout", self.connectTimeout, default: configuration.connectTimeout, allowZero: false)
        configuration.bufferSize = try FlagValue.size("--buffer-size", self.bufferSize, default: configuration.bufferSize, minimum: 4096)
    }
}
