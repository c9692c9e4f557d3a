import Logging
import NIOConcurrencyHelpers

/// The least severe level logged, shared by every logger of a running relay so that a reload of
/// `--config` can change it (`log-level: debug` while chasing a problem) without a restart.
public final class LiveLogLevel: Sendable {
    private let box: NIOLockedValueBox<Logger.Level>

    public init(_ level: Logger.Level) {
        self.box = NIOLockedValueBox(level)
    }

    public var level: Logger.Level { self.box.withLockedValue { $0 } }

    public func set(_ level: Logger.Level) {
        self.box.withLockedValue { $0 = level }
    }
}
