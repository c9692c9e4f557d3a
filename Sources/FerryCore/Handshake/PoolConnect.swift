import NIOCore

/// A session's backend connect over the targets a pool ordered (``BackendPools``): the first that
/// answers wins; one that refuses, times out or fails TLS is marked down and the next is tried, all
/// within the handshake's one budget, so the client sees 502 or 504 only when every target failed.
/// Each try may use its share of what is left (what is left ÷ targets left), so that one target that
/// swallows SYNs cannot spend the whole budget. For a route that is not a pool this is one connect.
enum PoolConnect {
    static func connect(
        targets: [BackendTarget],
        route: Route,
        pools: BackendPools,
        connector: any BackendConnecting,
        proxyHeader: ByteBuffer?,
        deadline: NIODeadline,
        attempt: BackendConnectAttempt,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<(Channel, BackendTarget)> {
        func tryTarget(_ index: Int) -> EventLoopFuture<(Channel, BackendTarget)> {
            let target = targets[index]
            let left = deadline - .now()
            let remaining = Int64(targets.count - index)
            let share = remaining > 1 ? TimeAmount.nanoseconds(left.nanoseconds / remaining) : left
            return connector.connect(to: target, options: route.options, proxyHeader: proxyHeader, timeout: share, attempt: attempt, on: eventLoop)
                .assumeIsolated()
                .map { channel -> (Channel, BackendTarget) in
                    pools.succeeded(target, route: route)
                    return (channel, target)
                }
                .flatMapError { error -> EventLoopFuture<(Channel, BackendTarget)> in
                    // Called off: not the target's fault, and nothing more to try.
                    guard !attempt.isCancelled else { return eventLoop.makeFailedFuture(error) }
                    pools.failed(target, route: route)
                    guard index + 1 < targets.count, deadline > .now() else { return eventLoop.makeFailedFuture(error) }
                    return tryTarget(index + 1)
                }
                .nonisolated()
        }
        return tryTarget(0)
    }
}
