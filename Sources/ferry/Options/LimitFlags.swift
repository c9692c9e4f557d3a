import ArgumentParser
import FerryCore

/// Counts and sizes: every one is bounded. Shown under "LIMITS" in `ferry --help`.
struct LimitFlags: ParsableArguments {
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

    func apply(to options: inout CommandLineOptions) {
        options.maxConnections = self.maxConnections
        options.maxConnectionsPerIP = self.maxConnectionsPerIp
        options.maxHandshakesPerSecondPerIP = self.maxHandshakesPerSecondPerIp
        options.bufferSize = self.bufferSize
        options.maxMessageSize = self.maxMessageSize
        options.maxHeaderSize = self.maxHeaderSize
    }
}
