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

    /// Called with each new state (the metrics' draining gauge).
    private let observer: NIOLockedValueBox<(@Sendable (State) -> Void)?> = NIOLockedValueBox(nil)

    public func set(_ state: State) {
        self.value.withLockedValue { $0 = state }
        self.observer.withLockedValue { $0 }?(state)
    }

    public func observe(_ observer: @escaping @Sendable (State) -> Void) {
        self.observer.withLockedValue { $0 = observer }
    }
}
