import FerryCore
import NIOCore

/// A token bucket for one chat member's lines: `burst` lines at once, then `perSecond`. A plain value
/// with no timers, so the rule is tested without a channel.
struct LineRateLimit: Sendable {
    let burst: Double
    let perSecond: Double
    private var tokens: Double
    private var last: NIODeadline

    init(burst: Int, perSecond: Int, now: NIODeadline) {
        self.burst = Double(max(burst, 1))
        self.perSecond = Double(max(perSecond, 0))
        self.tokens = self.burst
        self.last = now
    }

    /// Whether a line may go now; an allowed line spends a token.
    mutating func allow(at now: NIODeadline) -> Bool {
        let elapsed = Double(max((now - self.last).nanoseconds, 0)) / 1_000_000_000
        self.tokens = min(self.burst, self.tokens + elapsed * self.perSecond)
        self.last = now
        guard self.tokens >= 1 else { return false }
        self.tokens -= 1
        return true
    }
}
