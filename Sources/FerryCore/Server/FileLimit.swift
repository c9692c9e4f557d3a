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
    /// Raises the soft limit; returns the limit in force afterwards.
    @discardableResult
    public static func raise(forMaxConnections maxConnections: Int, logger: Logger) -> Int {
        #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        let current = Int(clamping: limit.rlim_cur)
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
