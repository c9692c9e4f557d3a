import Logging
import NIOConcurrencyHelpers
import NIOCore

/// `--auth-revalidate`: sessions that the `--auth-url` service let in are asked about again every
/// interval, with the facts of their handshake and past the cache. A 401 or 403 closes the session
/// with 1008 "authorization revoked"; an unavailable service closes nothing (an outage must not end
/// every session), which is logged by ``AuthCallback``.
public final class AuthRevalidation: Sendable {
    private struct Watch: Sendable {
        var request: AuthCallbackRequest
        var due: NIODeadline
    }

    private struct State: Sendable {
        var watched: [UInt64: Watch] = [:]
        var task: Task<Void, Never>?
        var stopped = false
    }

    /// The most requests one sweep has in flight at once.
    static let batch = 32

    public let interval: TimeAmount
    private let callback: AuthCallback
    private let eventLoop: EventLoop
    private let logger: Logger
    private let liveSessions: @Sendable () -> Set<UInt64>
    private let close: @Sendable (UInt64) -> Void
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - liveSessions: the ids of the sessions still open (watches of others are dropped).
    ///   - close: ends one session with 1008 "authorization revoked".
    public init(
        interval: TimeAmount,
        callback: AuthCallback,
        eventLoop: EventLoop,
        logger: Logger,
        liveSessions: @escaping @Sendable () -> Set<UInt64>,
        close: @escaping @Sendable (UInt64) -> Void
    ) {
        self.interval = interval
        self.callback = callback
        self.eventLoop = eventLoop
        self.logger = logger
        self.liveSessions = liveSessions
        self.close = close
    }

    /// Asks about session `id` again one interval from now, and every interval after.
    public func watch(session id: UInt64, request: AuthCallbackRequest) {
        self.state.withLockedValue { $0.watched[id] = Watch(request: request, due: .now() + self.interval) }
    }

    /// Sessions watched now (tests).
    var watchedCount: Int { self.state.withLockedValue { $0.watched.count } }

    public func start() {
        let task = Task { await self.run() }
        let started = self.state.withLockedValue { state -> Bool in
            guard !state.stopped, state.task == nil else { return false }
            state.task = task
            return true
        }
        if !started { task.cancel() }
    }

    public func stop() async {
        let task = self.state.withLockedValue { state in
            state.stopped = true
            return state.task
        }
        task?.cancel()
        await task?.value
    }

    /// Wakes a few times per interval (at most once a second apart) and asks about the sessions due.
    private func run() async {
        let tick = max(TimeAmount.milliseconds(20), min(.nanoseconds(self.interval.nanoseconds / 4), .seconds(1)))
        while !Task.isCancelled {
            do {
                try await Task.sleep(nanoseconds: UInt64(tick.nanoseconds))
            } catch {
                return
            }
            await self.sweep()
        }
    }

    /// Asks about every due session, `batch` at a time; closes those the service now refuses.
    func sweep() async {
        let live = self.liveSessions()
        let now = NIODeadline.now()
        let due = self.state.withLockedValue { state -> [(UInt64, AuthCallbackRequest)] in
            state.watched = state.watched.filter { live.contains($0.key) }
            return state.watched.filter { $0.value.due <= now }.map { ($0.key, $0.value.request) }
        }
        var start = 0
        while start < due.count, !Task.isCancelled {
            let batch = due[start..<min(start + Self.batch, due.count)]
            start += batch.count
            let answers = batch.map { self.callback.decide($0.1, useCache: false, eventLoop: self.eventLoop) }
            for ((id, request), answer) in zip(batch, answers) {
                let decision = try? await answer.get()
                if case .refused(let rejection) = decision {
                    self.state.withLockedValue { _ = $0.watched.removeValue(forKey: id) }
                    self.logger.info(
                        "authorization revoked by the service; ending the session",
                        metadata: ["session": "\(id)", "status": "\(rejection.status.code)", "route": "\(request.route)", "credential": "\(request.credentialFingerprint)"]
                    )
                    self.close(id)
                } else {
                    self.state.withLockedValue { $0.watched[id]?.due = .now() + self.interval }
                }
            }
        }
    }
}
