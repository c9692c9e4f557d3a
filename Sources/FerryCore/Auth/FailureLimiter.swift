import NIOConcurrencyHelpers
import NIOCore

/// Slows down token guessing: an address with too many failed token checks in a window is answered
/// 429 for the rest of it. The table is bounded; when full, the oldest entries are dropped.
public final class FailureLimiter: Sendable {
    private struct Record {
        var windowStart: NIODeadline
        var failures: Int
    }

    public let limit: Int
    public let window: TimeAmount
    private let maxEntries: Int
    private let records = NIOLockedValueBox<[String: Record]>([:])

    public init(limit: Int, window: TimeAmount, maxEntries: Int = 65_536) {
        self.limit = limit
        self.window = window
        self.maxEntries = maxEntries
    }

    /// True while `address` is over the limit.
    public func isBlocked(_ address: String, now: NIODeadline = .now()) -> Bool {
        self.records.withLockedValue { records in
            guard let record = records[address] else { return false }
            if now - record.windowStart >= self.window {
                records[address] = nil
                return false
            }
            return record.failures >= self.limit
        }
    }

    public func recordFailure(_ address: String, now: NIODeadline = .now()) {
        self.records.withLockedValue { records in
            if var record = records[address], now - record.windowStart < self.window {
                record.failures += 1
                records[address] = record
                return
            }
            if records.count >= self.maxEntries {
                let stale = records.filter { now - $0.value.windowStart >= self.window }.map(\.key)
                for key in stale { records[key] = nil }
                if records.count >= self.maxEntries, let oldest = records.min(by: { $0.value.windowStart < $1.value.windowStart })?.key {
                    records[oldest] = nil
                }
            }
            records[address] = Record(windowStart: now, failures: 1)
        }
    }
}
