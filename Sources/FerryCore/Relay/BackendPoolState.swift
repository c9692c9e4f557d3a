import NIOCore

/// Which of a pool's targets a handshake tries, and in what order, with passive health: a target
/// that refused or timed out is skipped for a back-off (1 s, doubling per failure in a row, at most
/// 30 s), then tried again. Timer-free: the caller passes the time and the live-session counts, and
/// tells it how each connect went; tested without a channel.
struct BackendPoolState {
    struct Health: Equatable {
        /// Failures in a row (0 after a success).
        var failures = 0
        /// Skipped until then.
        var downUntil: NIODeadline?
    }

    static let firstBackoff = TimeAmount.seconds(1)
    static let maxBackoff = TimeAmount.seconds(30)

    /// By target (its description): shared by every route that names the target, kept across reloads.
    private(set) var health: [String: Health] = [:]
    /// Where round-robin starts next, per route path.
    private var next: [String: Int] = [:]

    /// The targets to try for a new session of `route`, best first: those up, in the route's balance
    /// order; the ones backing off only when no target is up (trying beats a certain 502).
    mutating func order(
        _ route: Route,
        client: String,
        now: NIODeadline,
        sessions: (BackendTarget) -> Int
    ) -> [BackendTarget] {
        let pool = route.targets
        guard pool.count > 1 else { return pool }
        let isUp = { (target: BackendTarget) -> Bool in
            guard let until = self.health[target.description]?.downUntil else { return true }
            return until <= now
        }
        let start: Int
        switch route.options.balance ?? .roundRobin {
        case .hashClient:
            start = Int(Self.hash(client) % UInt64(pool.count))
        case .roundRobin, .leastSessions:
            start = self.next[route.path, default: 0] % pool.count
            self.next[route.path] = (start + 1) % pool.count
        }
        var rotated = Array(pool[start...] + pool[..<start])
        if route.options.balance == .leastSessions {
            // Stable: ties keep the round-robin order, so equal targets share new sessions.
            let counts = rotated.map(sessions)
            rotated = zip(rotated, counts).enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element.0)
        }
        let up = rotated.filter(isUp)
        if !up.isEmpty { return up }
        return rotated.sorted { (self.health[$0.description]?.downUntil ?? now) < (self.health[$1.description]?.downUntil ?? now) }
    }

    /// A connect to `target` failed (refused, timed out, TLS failed): it backs off.
    mutating func failed(_ target: BackendTarget, now: NIODeadline) {
        var health = self.health[target.description, default: Health()]
        health.failures += 1
        let shift = min(health.failures - 1, 5)
        let backoff = min(Self.maxBackoff, .nanoseconds(Self.firstBackoff.nanoseconds << shift))
        health.downUntil = now + backoff
        self.health[target.description] = health
    }

    /// A connect to `target` succeeded: it is up again.
    mutating func succeeded(_ target: BackendTarget) {
        if self.health[target.description] != nil { self.health[target.description] = nil }
    }

    /// FNV-1a over the client's address: stable across runs and replicas, so that every replica
    /// sends one client to the same target.
    static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
