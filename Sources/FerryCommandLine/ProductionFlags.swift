import ArgumentParser
import FerryCore

/// Metrics, load balancers in front, and the SIGTERM drain. Shown under "PRODUCTION" in `ferry --help`.
public struct ProductionFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Serve Prometheus /metrics, /healthz and the sessions API here, never on the public listeners.", valueName: "addr:port"))
    var adminListen: String?

    @Option(help: ArgumentHelp("A file whose first line is the token every --admin-listen request must send as Authorization: Bearer. Needed for the sessions API on a non-loopback address.", valueName: "file"))
    var adminToken: String?

    @Option(help: ArgumentHelp("A load balancer (address or CIDR) whose PROXY headers (listeners with ,proxy-protocol) and X-Forwarded-For/Forwarded headers are believed; unix: believe X-Forwarded-For/Forwarded from clients of Unix-socket listeners (a proxy on this host). Repeatable.", valueName: "cidr"))
    var trustedProxy: [String] = []

    @Option(help: ArgumentHelp("On SIGTERM, answer /readyz with 503 this long before closing the listeners, so load balancers notice. (default: 5s)", valueName: "duration"))
    var drainDelay: String?

    @Option(help: ArgumentHelp("On SIGTERM, let live sessions go on this long after the listeners close; then they get close 1001. (default: 25s)", valueName: "duration"))
    var drainTimeout: String?

    @Option(help: ArgumentHelp("After a reload of --config removes a session's route or points it elsewhere, let the session go on this long; then it gets close 1001 'route removed'. Unset: such sessions go on until they end.", valueName: "duration"))
    var reloadGrace: String?

    @Option(help: ArgumentHelp("Also append the session-end lines to this file (in the --log-format).", valueName: "file"))
    var accessLog: String?

    /// Sets the drain's delay and timeout given.
    func applyDrain(to limits: inout Limits) throws(ConfigurationError) {
        limits.drainDelay = try FlagValue.duration("--drain-delay", self.drainDelay, default: limits.drainDelay, allowZero: true)
        limits.drainTimeout = try FlagValue.duration("--drain-timeout", self.drainTimeout, default: limits.drainTimeout, allowZero: true)
        if let reloadGrace {
            limits.reloadGrace = try FlagValue.duration("--reload-grace", reloadGrace, default: .zero, allowZero: true)
        }
    }

    /// The `--trusted-proxy` blocks (`unix` is not one: see ``trustsUnixSocketPeers``).
    func trustedProxies() throws(ConfigurationError) -> [AddressBlock] {
        try self.trustedProxy.filter { $0 != "unix" }.map { (text) throws(ConfigurationError) in
            guard let block = AddressBlock(text) else {
                throw ConfigurationError(flag: "--trusted-proxy", value: text, problem: "not an address or CIDR block", expected: "e.g. 10.0.0.0/8, 192.0.2.10, fd00::/8, or unix for a proxy on a Unix-socket listener")
            }
            return block
        }
    }

    var trustsUnixSocketPeers: Bool { self.trustedProxy.contains("unix") }

    /// `--admin-token`'s secret, read once at start-up.
    func adminTokenSecret() throws(ConfigurationError) -> String? {
        guard let path = self.adminToken else { return nil }
        guard self.adminListen != nil else {
            throw ConfigurationError(flag: "--admin-token", value: path, problem: "guards the admin port, but none is open", expected: "--admin-listen ADDR:PORT as well")
        }
        return try FlagValue.secret(inFile: path, flag: "--admin-token")
    }

    func adminListenAddress() throws(ConfigurationError) -> ListenAddress? {
        try self.adminListen.map { (text) throws(ConfigurationError) in try ListenAddress.parse(text, flag: "--admin-listen", allowUnix: false) }
    }
}
