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
        let needed = 2 * maxConnections + 64
        if current < needed {
            logger.warning(
                "file descriptor limit is too low for --max-connections",
                metadata: ["limit": "\(current)", "needed": "\(needed)", "fix": "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections"]
            )
        }
        return current
    }
}
