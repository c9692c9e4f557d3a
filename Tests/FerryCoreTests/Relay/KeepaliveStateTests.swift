import NIOCore
import Testing

@testable import FerryCore

@Suite("Unit: keepalive state")
struct KeepaliveStateUnitTests {
    /// idle 60 s, ping every 10 s, ping timeout 5 s.
    private static func limits(idle: Int64 = 60, interval: Int64 = 10, timeout: Int64 = 5) -> Limits {
        var limits = Limits()
        limits.idleTimeout = .seconds(idle)
        limits.pingInterval = .seconds(interval)
        limits.pingTimeout = .seconds(timeout)
        return limits
    }

    @Test("a ping is sent once the interval has passed without hearing from the client")
    func pingAfterInterval() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        #expect(state.evaluate(at: at(0)) == .none)
        #expect(state.evaluate(at: at(9_999, ms: true)) == .none)
        #expect(state.pingSentAt == nil)
        #expect(state.evaluate(at: at(10)) == .sendPing)
        #expect(state.pingSentAt == at(10))
        // Only one ping while it is outstanding.
        #expect(state.evaluate(at: at(10)) == .none)
        #expect(state.evaluate(at: at(12)) == .none)
    }

    @Test("an unanswered ping drops the client after the ping timeout")
    func dropAfterPingTimeout() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        #expect(state.evaluate(at: at(11)) == .sendPing)
        #expect(state.evaluate(at: at(15_999, ms: true)) == .none)
        #expect(state.evaluate(at: at(16)) == .dropUnresponsive)
        #expect(state.evaluate(at: at(30)) == .dropUnresponsive)
    }

    @Test("other frames from the client do not answer a ping")
    func heardDoesNotClearPing() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        #expect(state.evaluate(at: at(10)) == .sendPing)
        state.heardFromClient(at: at(12))
        state.dataSeen(at: at(13))
        #expect(state.pingSentAt == at(10))
        #expect(state.evaluate(at: at(15)) == .dropUnresponsive)
    }

    @Test("a pong clears the outstanding ping and restarts the interval")
    func pongClears() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        #expect(state.evaluate(at: at(10)) == .sendPing)
        state.pongReceived(at: at(12))
        #expect(state.pingSentAt == nil)
        #expect(state.lastHeard == at(12))
        #expect(state.evaluate(at: at(15)) == .none)
        #expect(state.evaluate(at: at(21)) == .none)
        #expect(state.evaluate(at: at(22)) == .sendPing)
        #expect(state.pingSentAt == at(22))
    }

    @Test("hearing from the client postpones the ping")
    func heardPostponesPing() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        state.heardFromClient(at: at(8))
        #expect(state.lastHeard == at(8))
        #expect(state.evaluate(at: at(10)) == .none)
        #expect(state.evaluate(at: at(17)) == .none)
        #expect(state.evaluate(at: at(18)) == .sendPing)
    }

    @Test("data does not postpone the ping; only frames from the client do")
    func dataDoesNotPostponePing() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        state.dataSeen(at: at(9))
        #expect(state.lastData == at(9))
        #expect(state.lastHeard == at(0))
        #expect(state.evaluate(at: at(10)) == .sendPing)
    }

    @Test("a session with no data for the idle timeout is closed")
    func idleClose() {
        var state = KeepaliveState(limits: Self.limits(idle: 60, interval: 0), now: at(0))
        #expect(state.evaluate(at: at(59_999, ms: true)) == .none)
        #expect(state.evaluate(at: at(60)) == .closeIdle)

        var refreshed = KeepaliveState(limits: Self.limits(idle: 60, interval: 0), now: at(0))
        refreshed.dataSeen(at: at(30))
        #expect(refreshed.evaluate(at: at(60)) == .none)
        #expect(refreshed.evaluate(at: at(89)) == .none)
        #expect(refreshed.evaluate(at: at(90)) == .closeIdle)
    }

    @Test("pings and pongs do not keep an idle session open")
    func pongsDoNotPreventIdle() {
        var state = KeepaliveState(limits: Self.limits(idle: 30, interval: 10, timeout: 5), now: at(0))
        var closedAt: Int64? = nil
        for second in Int64(1)...40 {
            switch state.evaluate(at: at(second)) {
            case .sendPing: state.pongReceived(at: at(second))
            case .closeIdle: closedAt = second
            case .dropUnresponsive: Issue.record("dropped at \(second) although every ping was answered")
            case .none: break
            }
            if closedAt != nil { break }
        }
        #expect(closedAt == 30)
    }

    @Test("idle close takes precedence over an overdue ping")
    func idleBeforeDrop() {
        var state = KeepaliveState(limits: Self.limits(idle: 12, interval: 10, timeout: 5), now: at(0))
        #expect(state.evaluate(at: at(10)) == .sendPing)
        #expect(state.evaluate(at: at(15)) == .closeIdle)
    }

    @Test("zero timers are off")
    func disabled() {
        var state = KeepaliveState(limits: Self.limits(idle: 0, interval: 0), now: at(0))
        #expect(state.nextDeadline == nil)
        for second: Int64 in [0, 10, 60, 3600, 86_400 * 365] {
            #expect(state.evaluate(at: at(second)) == .none, "at \(second) s")
        }
        #expect(state.pingSentAt == nil)

        // Idle off, pings on.
        var pingsOnly = KeepaliveState(limits: Self.limits(idle: 0, interval: 10), now: at(0))
        #expect(pingsOnly.evaluate(at: at(86_400)) == .sendPing)

        // Pings off, idle on.
        var idleOnly = KeepaliveState(limits: Self.limits(idle: 60, interval: 0), now: at(0))
        #expect(idleOnly.evaluate(at: at(59)) == .none)
        #expect(idleOnly.pingSentAt == nil)
    }

    @Test("nextDeadline is the earliest moment something is due")
    func nextDeadline() {
        var state = KeepaliveState(limits: Self.limits(), now: at(0))
        #expect(state.nextDeadline == at(10))  // ping before idle
        state.heardFromClient(at: at(7))
        #expect(state.nextDeadline == at(17))
        #expect(state.evaluate(at: at(17)) == .sendPing)
        #expect(state.nextDeadline == at(22))  // ping timeout
        state.pongReceived(at: at(20))
        #expect(state.nextDeadline == at(30))  // next ping

        var idleSoon = KeepaliveState(limits: Self.limits(idle: 8, interval: 10), now: at(0))
        #expect(idleSoon.nextDeadline == at(8))
        idleSoon.dataSeen(at: at(5))
        #expect(idleSoon.nextDeadline == at(10))

        let idleOnly = KeepaliveState(limits: Self.limits(idle: 60, interval: 0), now: at(0))
        #expect(idleOnly.nextDeadline == at(60))

        let pingsOnly = KeepaliveState(limits: Self.limits(idle: 0, interval: 10), now: at(0))
        #expect(pingsOnly.nextDeadline == at(10))
    }

    @Test("evaluate answers something other than none exactly from nextDeadline on")
    func deadlineIsExact() {
        for (idle, interval, timeout) in [(60, 10, 5), (8, 10, 5), (0, 10, 5), (60, 0, 5), (13, 10, 5)] as [(Int64, Int64, Int64)] {
            var state = KeepaliveState(limits: Self.limits(idle: idle, interval: interval, timeout: timeout), now: at(0))
            // Walk through a few deadlines, answering pings, until the session ends.
            for _ in 0..<5 {
                guard let deadline = state.nextDeadline else {
                    Issue.record("no deadline for \(idle)/\(interval)/\(timeout)")
                    break
                }
                var before = state
                #expect(before.evaluate(at: deadline - .nanoseconds(1)) == .none, "\(idle)/\(interval)/\(timeout)")
                let action = state.evaluate(at: deadline)
                #expect(action != .none, "\(idle)/\(interval)/\(timeout)")
                if action != .sendPing { break }
            }
        }
    }

    @Test("the configured values are kept")
    func values() {
        let state = KeepaliveState(limits: Self.limits(idle: 1, interval: 2, timeout: 3), now: at(4))
        #expect(state.idleTimeout == .seconds(1))
        #expect(state.pingInterval == .seconds(2))
        #expect(state.pingTimeout == .seconds(3))
        #expect(state.lastData == at(4))
        #expect(state.lastHeard == at(4))
        #expect(state.pingSentAt == nil)
    }
}

/// A deadline `value` seconds (or milliseconds) after an arbitrary base, so no test depends on the clock.
private func at(_ value: Int64, ms: Bool = false) -> NIODeadline {
    let base: UInt64 = 1_000_000_000_000
    let nanoseconds = UInt64(value) * (ms ? 1_000_000 : 1_000_000_000)
    return .uptimeNanoseconds(base + nanoseconds)
}

@Suite("Unit: memory trim policy")
struct MemoryTrimPolicyTests {
    @Test("trims once the count falls to half its peak, by at least 64 sessions; then from the new level")
    func fallsToHalf() {
        var policy = MemoryTrimPolicy()
        // (sessions open at a check, whether that check trims)
        let steps: [(Int, Bool)] = [
            (0, false), (2000, false), (1200, false),  // not yet half
            (900, true), (900, false),  // once per fall
            (500, false),  // 400 fewer than 900 is not yet half
            (0, true), (100, false),
            (40, false),  // 60 sessions gone free too little to be worth a heap walk
        ]
        for (open, trims) in steps {
            let answer = policy.shouldTrim(open: open)
            #expect(answer == trims, "at \(open) open")
        }
    }
}

extension MemoryTrimPolicyTests {
    @Test("a burst that rose and fell between two checks is seen through the registry's peak")
    func burstBetweenChecks() {
        let registry = SessionRegistry(maxConnections: 5000)
        var policy = MemoryTrimPolicy()
        let before = registry.takePeak()
        let trimsBefore = policy.shouldTrim(open: before.open, peakSinceLastCheck: before.peak)
        #expect(!trimsBefore)
        let slots = (0..<2000).compactMap { _ in try? registry.reserve(address: "a").get() }
        for slot in slots { registry.release(slot) }
        let (open, peak) = registry.takePeak()
        #expect(open == 0 && peak == 2000)
        let trims = policy.shouldTrim(open: open, peakSinceLastCheck: peak)
        #expect(trims)
        #expect(registry.takePeak().peak == 0, "read once")
    }
}
