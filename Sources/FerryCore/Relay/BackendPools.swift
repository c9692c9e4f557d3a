import NIOConcurrencyHelpers
import NIOCore

/// The server's pools: the order a handshake tries a route's targets in (``BackendPoolState``, under
/// a lock) and the live sessions per target it balances on (from the session registry). One per
/// server, kept across reloads, so a target's health outlives a change to its routes.
final class BackendPools: Sendable {
    private let state = NIOLockedValueBox(BackendPoolState())
    private let registry: SessionRegistry
    private let metrics: FerryMetrics

    init(registry: SessionRegistry, metrics: FerryMetrics) {
        self.registry = registry
        self.metrics = metrics
    }

    /// The targets to try for a new session of `route` from `client`; one for a route that is not a pool.
    func order(_ route: Route, client: String) -> [BackendTarget] {
        guard route.isPool else { return route.targets }
        let registry = self.registry
        return self.state.withLockedValue { state in
            state.order(route, client: client, now: .now()) { registry.liveSessions(onTarget: $0.description) }
        }
    }

    func failed(_ target: BackendTarget, route: Route) {
        guard route.isPool else { return }
        self.state.withLockedValue { $0.failed(target, now: .now()) }
        self.metrics.poolTargetFailed(route: route.path, target: target.description)
    }

    func succeeded(_ target: BackendTarget, route: Route) {
        guard route.isPool else { return }
        self.state.withLockedValue { $0.succeeded(target) }
    }

    /// A target's health now (tests).
    func health(of target: BackendTarget) -> BackendPoolState.Health? {
        self.state.withLockedValue { $0.health[target.description] }
    }
}
