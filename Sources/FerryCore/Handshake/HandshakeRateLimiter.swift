import NIOConcurrencyHelpers
import NIOCore

/// `--max-handshakes-per-second-per-ip`: a token bucket per client address (burst = one second's
/// worth). The table is bounded; buckets that have refilled are dropped first when it is full. A rate
/// of 0 lets everything through; a reload may change the rate.
final class HandshakeRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private let rate: NIOLockedValueBox<Int>
    private let maxEntries: Int
    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])

    init(perSecond: Int, maxEntries: Int = 65_536) {
        self.rate = NIOLockedValueBox(perSecond)
        self.maxEntries = maxEntries
    }

    var perSecond: Int { self.rate.withLockedValue { $0 } }

    func setRate(_ perSecond: Int) {
        self.rate.withLockedValue { $0 = perSecond }
        self.buckets.withLockedValue { $0 = [:] }
    }

    /// Takes a token for `address`; false when it has none left (answer 429).
    func allow(_ address: String, now: NIODeadline = .now()) -> Bool {
        let perSecond = self.perSecond
        guard perSecond > 0 else { return true }
        let rate = Double(perSecond)
        return self.buckets.withLockedValue { buckets in
            var bucket = buckets[address] ?? Bucket(tokens: rate, updated: now)
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(rate, bucket.tokens + elapsed * rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            if buckets[address] == nil && buckets.count >= self.maxEntries {
                let full = buckets.filter { Double((now - $0.value.updated).nanoseconds) / 1e9 * rate + $0.value.tokens >= rate }.map(\.key)
                for key in full.prefix(max(1, self.maxEntries / 10)) { buckets[key] = nil }
                if buckets.count >= self.maxEntries, let any = buckets.keys.first { buckets[any] = nil }
            }
            buckets[address] = bucket
            return allowed
        }
    }
}
