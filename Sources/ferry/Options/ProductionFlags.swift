import ArgumentParser
import FerryCore

/// Metrics, load balancers in front, and the SIGTERM drain. Shown under "PRODUCTION" in `ferry --help`.
struct ProductionFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Serve Prometheus /metrics (and /healthz) here, never on the public listeners.", valueName: "addr:port"))
    var adminListen: String?

    @Option(help: ArgumentHelp("A load balancer (address or CIDR) whose PROXY headers (listeners with ,proxy-protocol) and X-Forwarded-For/Forwarded headers are believed; unix: believe X-Forwarded-For/Forwarded from clients of Unix-socket listeners (a proxy on this host). Repeatable.", valueName: "cidr"))
    var trustedProxy: [String] = []

    @Option(help: ArgumentHelp("On SIGTERM, answer /readyz with 503 this long before closing the listeners, so load balancers notice. (default: 5s)", valueName: "duration"))
    var drainDelay: String?

    @Option(help: ArgumentHelp("On SIGTERM, let live sessions go on this long after the listeners close; then they get close 1001. (default: 25s)", valueName: "duration"))
    var drainTimeout: String?

    @Option(help: ArgumentHelp("Also append the session-end lines to this file (in the --log-format).", valueName: "file"))
    var accessLog: String?

    func apply(to options: inout CommandLineOptions) {
        options.adminListen = self.adminListen
        options.trustedProxy = self.trustedProxy
        options.drainDelay = self.drainDelay
        options.drainTimeout = self.drainTimeout
    }
}
