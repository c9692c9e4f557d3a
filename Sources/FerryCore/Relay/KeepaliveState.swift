import NIOCore

/// When to ping a client, when to give up on one that does not answer, and when a session has been idle
/// too long. A plain value with no timers, so every rule is tested without a channel; the session
/// handler asks it what to do and when to ask again.
public struct KeepaliveState: Sendable {
    public enum Action: Equatable, Sendable {
        case none
        case sendPing
        /// No data either way for `--idle-timeout`.
        case closeIdle
        /// A ping went unanswered for `--ping-timeout`.
        case dropUnresponsive
    }

    public let idleTimeout: TimeAmount
    public let pingInterval: TimeAmount
    public let pingTimeout: TimeAmount
    /// Last payload byte either way.
    public private(set) var lastData: NIODeadline
    /// Last data frame or pong from the client. Not its pings: a client that sends pings and never
    /// reads must still be dropped when it does not answer the relay's.
    public private(set) var lastHeard: NIODeadline
    /// When the unanswered ping was sent.
    public private(set) var pingSentAt: NIODeadline?

    public init(limits: Limits, now: NIODeadline) {
        self.idleTimeout = limits.idleTimeout
        self.pingInterval = limits.pingInterval
        self.pingTimeout = limits.pingTimeout
        self.lastData = now
        self.lastHeard = now
    }

    public mutating func dataSeen(at now: NIODeadline) {
        self.lastData = now
    }

    public mutating func heardFromClient(at now: NIODeadline) {
        self.lastHeard = now
    }

    public mutating func pongReceived(at now: NIODeadline) {
        self.lastHeard = now
        self.pingSentAt = nil
    }

    /// What to do now; a `.sendPing` answer records the ping as sent.
    public mutating func evaluate(at now: NIODeadline) -> Action {
        if self.idleTimeout > .zero && now >= self.lastData + self.idleTimeout {
            return .closeIdle
        }
        if let sent = self.pingSentAt {
            return now >= sent + self.pingTimeout ? .dropUnresponsive : .none
        }
        if self.pingInterval > .zero && now >= self.lastHeard + self.pingInterval {
            self.pingSentAt = now
            return .sendPing
        }
        return .none
    }

    /// The next moment ``evaluate(at:)`` could answer something other than `.none`; nil if never.
    public var nextDeadline: NIODeadline? {
        var deadlines: [NIODeadline] = []
        if self.idleTimeout > .zero { deadlines.append(self.lastData + self.idleTimeout) }
        if let sent = self.pingSentAt {
            deadlines.append(sent + self.pingTimeout)
        } else if self.pingInterval > .zero {
            deadlines.append(self.lastHeard + self.pingInterval)
        }
        return deadlines.min()
    }
}
