import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Every session holds two file descriptors (client and backend), so the default soft limit (often
/// 1024) would cap Ferry at a few hundred sessions. At start-up the soft limit is raised to the hard
/// limit, with a warning when even that is too low for `--max-connections`.
public enum FileLimit {
    #if os(Linux)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    /// Raises the soft limit to the hard limit; returns the limit in force afterwards (0 if it cannot
    /// be read). The relay and the benchmark both start with this.
    @discardableResult
    public static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Self.resource, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// The soft limit in force (1024 if it cannot be read).
    public static func current() -> Int {
        var limit = rlimit()
        return getrlimit(Self.resource, &limit) == 0 ? Int(clamping: limit.rlim_cur) : 1024
    }

    /// Raises the soft limit, and warns when even that is too low for `--max-connections`; returns the
    /// limit in force afterwards.
    @discardableResult
    public static func raise(forMaxConnections maxConnections: Int, logger: Logger) -> Int {
        let current = Self.raiseToHardLimit()
        guard current > 0 else { return 0 }
        let sessions = Self.sessions(allowedBy: current)
        switch Self.verdict(sessions: sessions, maxConnections: maxConnections) {
        case .enough:
            break
        case .nearly:
            logger.debug("file descriptor limit covers most of --max-connections", metadata: ["limit": "\(current)", "sessions": "\(sessions)", "max_connections": "\(maxConnections)"])
        case .tooLow:
            logger.warning(
                "file descriptor limit is too low for --max-connections: sessions beyond it wait at accept",
                metadata: [
                    "limit": "\(current)", "sessions": "\(sessions)", "max_connections": "\(maxConnections)",
                    "fix": "raise the limit (ulimit -n, LimitNOFILE= in the unit) to \(Self.needed(forMaxConnections: maxConnections)) or lower --max-connections to \(sessions)",
                ]
            )
        }
        return current
    }

    /// Descriptors kept for listeners, log files, the admin port and the like.
    static let reserve = 64

    /// Sessions a descriptor limit allows: two descriptors each (client and backend).
    static func sessions(allowedBy limit: Int) -> Int { max(0, (limit - Self.reserve) / 2) }

    static func needed(forMaxConnections maxConnections: Int) -> Int { 2 * maxConnections + Self.reserve }

    enum Verdict: Equatable { case enough, nearly, tooLow }

    /// A limit that covers 90 % of `--max-connections` is not worth a warning at every start (the
    /// default 10,000 against a common hard limit of 20,000 falls 32 sessions short); less is.
    static func verdict(sessions: Int, maxConnections: Int) -> Verdict {
        if sessions >= maxConnections { return .enough }
        return sessions * 10 >= maxConnections * 9 ? .nearly : .tooLow
    }
}
