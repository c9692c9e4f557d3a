import NIOConcurrencyHelpers

/// The limits and timeouts a reload may change while the relay runs. Each connection reads them when
/// it is accepted and each session when it starts, so a change applies to what comes after it; what
/// is already open keeps what it started with.
public final class LiveLimits: Sendable {
    private let box: NIOLockedValueBox<Limits>

    public init(_ limits: Limits) {
        self.box = NIOLockedValueBox(limits)
    }

    public var current: Limits { self.box.withLockedValue { $0 } }

    func replace(with limits: Limits) {
        self.box.withLockedValue { $0 = limits }
    }
}
