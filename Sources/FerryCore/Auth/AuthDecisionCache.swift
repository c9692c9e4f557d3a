import NIOCore

/// The `--auth-url` service's recent decisions, so a burst of handshakes with the same credentials
/// asks it once. Bounded in entries and in age: an answer is kept for its `max-age`, never beyond
/// `maxAge`, and a refusal never beyond `refusalMaxAge`; an unavailable service is never cached.
/// A plain value (the caller holds it under a lock) with the clock passed in, so it is tested alone.
public struct AuthDecisionCache: Sendable {
    /// A hash of what the decision depends on (``AuthCallbackRequest/cacheKey``).
    public struct Key: Hashable, Sendable {
        var digest: [UInt8]
    }

    private struct Entry: Sendable {
        var decision: AuthCallbackDecision
        var expires: NIODeadline
    }

    public let maxEntries: Int
    public let maxAge: TimeAmount
    public let refusalMaxAge: TimeAmount
    private var entries: [Key: Entry] = [:]

    public init(maxEntries: Int, maxAge: TimeAmount, refusalMaxAge: TimeAmount) {
        self.maxEntries = max(1, maxEntries)
        self.maxAge = maxAge
        self.refusalMaxAge = refusalMaxAge
    }

    public var count: Int { self.entries.count }

    /// The decision kept for `key`, if it has not expired (an expired one is dropped).
    public mutating func decision(for key: Key, now: NIODeadline) -> AuthCallbackDecision? {
        guard let entry = self.entries[key] else { return nil }
        guard entry.expires > now else {
            self.entries[key] = nil
            return nil
        }
        return entry.decision
    }

    /// Keeps `decision` for its answer's `maxAge`, capped; does nothing when that comes to 0.
    public mutating func store(_ decision: AuthCallbackDecision, maxAge: TimeAmount?, for key: Key, now: NIODeadline) {
        guard let asked = maxAge else { return }
        let cap: TimeAmount
        switch decision {
        case .allowed: cap = self.maxAge
        case .refused: cap = min(self.maxAge, self.refusalMaxAge)
        case .unavailable: return
        }
        let age = min(asked, cap)
        guard age > .zero else { return }
        if self.entries[key] == nil && self.entries.count >= self.maxEntries { self.makeRoom(now: now) }
        self.entries[key] = Entry(decision: decision, expires: now + age)
    }

    /// Drops what has expired; if the cache is still full, the tenth that expires soonest, so a
    /// full cache pays for a sort once per many stores rather than a scan on each.
    private mutating func makeRoom(now: NIODeadline) {
        self.entries = self.entries.filter { $0.value.expires > now }
        guard self.entries.count >= self.maxEntries else { return }
        let doomed = self.entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, self.maxEntries / 10))
        for (key, _) in doomed { self.entries[key] = nil }
    }
}
