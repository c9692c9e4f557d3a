import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Servers that end by themselves (`--exit-when-idle`, `--accept-for`, `--run-once`).
extension FerryServer {
    enum LifetimeEnd {
        /// The lifetime is over: the listeners are closed and no session is left.
        case ended
        /// Graceful shutdown or cancellation came first; the drain takes over.
        case interrupted
    }

    /// Waits for the end of a lifetime that is not forever, closing the listeners on the way:
    /// - `exitWhenIdle`: once no session (upgraded or still connecting) has been open for that long,
    ///   counted from ``start()`` and from each time the count fell to 0, the listeners close and it ends;
    /// - `acceptFor`: that long after ``start()`` the listeners close; it ends when the last session
    ///   does, however long that takes (as websockify's `--timeout`);
    /// - `runOnce`: once the first WebSocket session is upgraded the listeners close; it ends when no
    ///   session is left. Plain HTTP requests do not count.
    ///
    /// Event-driven: the registry reports each upgrade and each fall of the count to 0, and one timer
    /// wakes the loop at the next deadline (the end of `acceptFor`, or of the idle time).
    func waitForLifetime(_ lifetime: ServerLifetime) async -> LifetimeEnd {
        let registry = self.environment.registry
        let logger = self.environment.logger
        let startedAt = self.startedAt.withLockedValue { $0 } ?? .now()
        let loop = self.group.any()
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        registry.observeActivity { [acceptGate] in
            // --run-once: no one else gets in from the moment the first session is live (the
            // listeners close a moment later, from this loop).
            if lifetime.runOnce && registry.activity.activated > 0 { acceptGate.shut() }
            _ = wake.yield()
        }
        defer { registry.observeActivity(nil) }
        return await withTaskCancellationOrGracefulShutdownHandler {
            var accepting = true
            var idleEnded = false
            var timer: Scheduled<Void>?
            defer { timer?.cancel() }
            _ = wake.yield()  // look once at the start
            for await _ in wakeups {
                if Task.isCancelled || Task.isShuttingDownGracefully { return .interrupted }
                let now = NIODeadline.now()
                let activity = registry.activity
                let idleFrom = max(startedAt, activity.idleSince ?? startedAt)
                if accepting {
                    // Why the listeners close now, if they do.
                    var closing: String?
                    if let acceptFor = lifetime.acceptFor, now >= startedAt + acceptFor {
                        closing = "no longer accepting: --accept-for \(acceptFor.shortDescription) passed"
                    } else if lifetime.runOnce, activity.activated > 0 {
                        closing = "no longer accepting: the first session is open (--run-once)"
                    } else if let idle = lifetime.exitWhenIdle, activity.open == 0, now >= idleFrom + idle {
                        closing = "exiting: no session for \(idle.shortDescription)"
                        idleEnded = true
                    }
                    if let closing {
                        accepting = false
                        self.environment.readiness.set(.draining)
                        await self.closeListeners()
                        // Logged once the listeners are closed, so the line means no one else gets in.
                        logger.info("\(closing)", metadata: ["sessions": "\(activity.open)"])
                    }
                }
                if !accepting {
                    // Only the count falling to 0 matters now, and the registry reports it. (After the
                    // idle time it is 0 already, unless a session got in as the listeners closed.)
                    if registry.count == 0 {
                        if !idleEnded { logger.info("exiting: the last session ended") }
                        return .ended
                    }
                    idleEnded = false
                    continue
                }
                var next = lifetime.acceptFor.map { startedAt + $0 }
                if let idle = lifetime.exitWhenIdle, activity.open == 0 {
                    next = min(next ?? idleFrom + idle, idleFrom + idle)
                }
                timer?.cancel()
                timer = next.map { deadline in loop.scheduleTask(deadline: deadline) { _ = wake.yield() } }
            }
            return .interrupted
        } onCancelOrGracefulShutdown: {
            wake.finish()
        }
    }
}

extension TimeAmount {
    /// `300ms`, `1s`, `5m`, `2h`: for log lines.
    var shortDescription: String {
        let nanoseconds = self.nanoseconds
        for (unit, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)]
        where nanoseconds != 0 && nanoseconds % size == 0 {
            return "\(nanoseconds / size)\(unit)"
        }
        return nanoseconds == 0 ? "0s" : "\(nanoseconds)ns"
    }
}
