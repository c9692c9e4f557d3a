import ArgumentParser
import FerryCore

/// How long each stage may take, and the pings that find dead clients. Shown under "TIMEOUTS AND KEEPALIVE" in `ferry --help`.
struct TimeoutFlags: ParsableArguments {
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

    func apply(to options: inout CommandLineOptions) {
        options.handshakeTimeout = self.handshakeTimeout
        options.connectTimeout = self.connectTimeout
        options.idleTimeout = self.idleTimeout
        options.pingInterval = self.pingInterval
        options.pingTimeout = self.pingTimeout
    }
}
