import NIOConcurrencyHelpers

/// Whether the server takes new sessions, for `GET /readyz`: not before the listeners are up, and not
/// once a drain has begun (so load balancers stop sending new connections first).
public final class Readiness: Sendable {
    public enum State: String, Sendable {
        case starting
        case ready
        case draining
    }

    private let value = NIOLockedValueBox(State.starting)

    public init() {}

    public var state: State { self.value.withLockedValue { $0 } }

    public func set(_ state: State) {
        self.value.withLockedValue { $0 = state }
    }
}
