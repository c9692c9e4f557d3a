import NIOConcurrencyHelpers
import NIOCore

/// The process-wide count of sessions, and a handle on each live one so that all can be told to close
/// (shutdown now; drain and token revocation later). Slots are reserved before the backend connect,
/// so `--max-connections` also bounds handshakes that are still connecting.
public final class SessionRegistry: Sendable {
    /// A live session as seen from outside its event loop.
    public struct Handle: Sendable {
        /// Who, where to, since when (the sessions API), and the token's fingerprint (revocation).
        public let facts: LiveSessionFacts
        /// Reads the session's byte counts and last activity on its event loop; safe from any thread.
        public let counters: @Sendable () -> EventLoopFuture<LiveSessionCounters>
        /// Asks the session to close with this code and reason; safe from any thread.
        public let close: @Sendable (_ code: UInt16, _ reason: String) -> Void

        public var tokenFingerprint: String? { self.facts.tokenFingerprint }

        public init(facts: LiveSessionFacts, counters: @escaping @Sendable () -> EventLoopFuture<LiveSessionCounters>, close: @escaping @Sendable (_ code: UInt16, _ reason: String) -> Void) {
            self.facts = facts
            self.counters = counters
            self.close = close
        }
    }

    private struct State {
        var maxConnections = 0
        var maxConnectionsPerAddress = 0
        var reserved = 0
        var nextID: UInt64 = 0
        var live: [UInt64: Handle] = [:]
        /// Live sessions per target (its description), for pools that balance on it.
        var perTarget: [String: Int] = [:]
        /// Slots still connecting, by the fingerprint of their token, so a revocation that comes
        /// before the session is live is not missed.
        var connecting: [UInt64: String] = [:]
        var revokedWhileConnecting: Set<UInt64> = []
        /// Open slots per client address, and each slot's address.
        var perAddress: [String: Int] = [:]
        var addressOf: [UInt64: String] = [:]
        /// Sessions ever activated (upgraded), and when the count of open slots last fell to 0.
        var activated: UInt64 = 0
        var idleSince: NIODeadline?
        /// The most slots open at once since ``takePeak()`` last read it.
        var peak = 0
        /// Told (outside the lock) of each activation and each fall to 0; nil: nobody listens.
        var observer: (@Sendable () -> Void)?
        /// Tasks in ``waitUntilEmpty()``, resumed by the release that empties the registry.
        var emptyWaiters: [UInt64: EmptyWaiter] = [:]
        var nextWaiterID: UInt64 = 0
    }

    /// A task in ``waitUntilEmpty()``: registered before it suspends, so that a cancellation that
    /// comes first is remembered rather than lost.
    private enum EmptyWaiter {
        case pending
        case cancelled
        case waiting(CheckedContinuation<Void, Never>)
    }

    /// What a server that ends by itself watches (``ServerLifetime``).
    public struct Activity: Sendable, Equatable {
        /// Sessions open or connecting.
        public var open: Int
        /// Sessions upgraded since the registry was made.
        public var activated: UInt64
        /// When the count of open sessions last fell to 0; nil if it never has.
        public var idleSince: NIODeadline?
    }

    /// Why a slot was not given.
    public enum Refusal: Error, Equatable {
        case full
        case fullForAddress
    }

    private let state = NIOLockedValueBox(State())

    public init(maxConnections: Int, maxConnectionsPerAddress: Int = 0) {
        self.state.withLockedValue { state in
            state.maxConnections = maxConnections
            state.maxConnectionsPerAddress = maxConnectionsPerAddress
        }
    }

    public var maxConnections: Int { self.state.withLockedValue { $0.maxConnections } }
    /// 0: no per-address limit.
    public var maxConnectionsPerAddress: Int { self.state.withLockedValue { $0.maxConnectionsPerAddress } }

    /// New limits (a reload); open slots stay, new ones count against these.
    public func setLimits(maxConnections: Int, maxConnectionsPerAddress: Int) {
        self.state.withLockedValue { state in
            state.maxConnections = maxConnections
            state.maxConnectionsPerAddress = maxConnectionsPerAddress
        }
    }

    /// Takes a slot for a client address, within both limits.
    public func reserve(address: String, tokenFingerprint: String? = nil) -> Result<UInt64, Refusal> {
        self.state.withLockedValue { state in
            guard state.reserved < state.maxConnections else { return .failure(.full) }
            if state.maxConnectionsPerAddress > 0 && state.perAddress[address, default: 0] >= state.maxConnectionsPerAddress {
                return .failure(.fullForAddress)
            }
            state.reserved += 1
            state.peak = max(state.peak, state.reserved)
            state.nextID += 1
            if let tokenFingerprint { state.connecting[state.nextID] = tokenFingerprint }
            state.perAddress[address, default: 0] += 1
            state.addressOf[state.nextID] = address
            return .success(state.nextID)
        }
    }

    /// Attaches a handle to a reserved slot once its session is spliced. Returns false if the
    /// session's token was revoked while it was connecting (the caller then closes it).
    public func activate(_ id: UInt64, handle: Handle) -> Bool {
        let (valid, observer) = self.state.withLockedValue { state in
            state.live[id] = handle
            state.perTarget[handle.facts.target, default: 0] += 1
            state.connecting[id] = nil
            state.activated += 1
            return (state.revokedWhileConnecting.remove(id) == nil, state.observer)
        }
        observer?()
        return valid
    }

    /// Frees a slot (the handshake failed, or the session ended).
    public func release(_ id: UInt64) {
        let observer = self.state.withLockedValue { state -> (@Sendable () -> Void)? in
            state.reserved -= 1
            if let handle = state.live.removeValue(forKey: id) {
                let left = state.perTarget[handle.facts.target, default: 1] - 1
                state.perTarget[handle.facts.target] = left > 0 ? left : nil
            }
            state.connecting[id] = nil
            state.revokedWhileConnecting.remove(id)
            if let address = state.addressOf.removeValue(forKey: id) {
                let left = state.perAddress[address, default: 1] - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
            guard state.reserved == 0 else { return nil }
            state.idleSince = .now()
            return state.observer
        }
        observer?()
        for waiter in self.takeEmptyWaiters() { waiter.resume() }
    }

    /// The suspended ``waitUntilEmpty()`` callers, if the registry is empty now.
    private func takeEmptyWaiters() -> [CheckedContinuation<Void, Never>] {
        self.state.withLockedValue { state in
            guard state.reserved == 0, !state.emptyWaiters.isEmpty else { return [] }
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.emptyWaiters {
                if case .waiting(let continuation) = waiter {
                    ready.append(continuation)
                    state.emptyWaiters[id] = nil
                }
            }
            return ready
        }
    }

    /// Returns once no slot is open (at once if none is), or when the task is cancelled. The drain
    /// waits on this: woken by the release that frees the last slot, not by polling the count.
    public func waitUntilEmpty() async {
        let id = self.state.withLockedValue { state -> UInt64 in
            state.nextWaiterID += 1
            state.emptyWaiters[state.nextWaiterID] = .pending
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLockedValue { state -> Bool in
                    if state.reserved == 0 || Self.isCancelled(state.emptyWaiters[id]) {
                        state.emptyWaiters[id] = nil
                        return true
                    }
                    state.emptyWaiters[id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                switch state.emptyWaiters[id] {
                case .waiting(let continuation):
                    state.emptyWaiters[id] = nil
                    return continuation
                case .pending:
                    state.emptyWaiters[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume()
        }
    }

    private static func isCancelled(_ waiter: EmptyWaiter?) -> Bool {
        if case .cancelled = waiter { return true }
        return false
    }

    /// Sessions open or connecting.
    public var count: Int { self.state.withLockedValue { $0.reserved } }

    /// The count now, and the most open at once since the last call (a burst between two calls is
    /// seen whole).
    func takePeak() -> (open: Int, peak: Int) {
        self.state.withLockedValue { state in
            defer { state.peak = state.reserved }
            return (state.reserved, state.peak)
        }
    }

    /// The count, the activations so far, and when the count last fell to 0, read together.
    public var activity: Activity {
        self.state.withLockedValue { Activity(open: $0.reserved, activated: $0.activated, idleSince: $0.idleSince) }
    }

    /// Calls `observer` after every activation and every time the count falls to 0, outside the lock,
    /// on whichever thread made the change; nil stops it. One observer at a time (the server's lifetime).
    public func observeActivity(_ observer: (@Sendable () -> Void)?) {
        self.state.withLockedValue { $0.observer = observer }
    }

    /// Asks every live session to close.
    public func closeAll(code: UInt16, reason: String) {
        let handles = self.state.withLockedValue { Array($0.live.values) }
        for handle in handles { handle.close(code, reason) }
    }

    /// Asks the sessions opened with these tokens to close (a token file no longer lists them, or an
    /// administrator asked). Returns how many live ones were asked; those still connecting are closed
    /// as soon as they are live.
    @discardableResult
    public func closeSessions(tokenFingerprints: Set<String>, code: UInt16, reason: String) -> Int {
        let handles = self.state.withLockedValue { state in
            for (id, fingerprint) in state.connecting where tokenFingerprints.contains(fingerprint) {
                state.revokedWhileConnecting.insert(id)
            }
            return state.live.values.filter { $0.tokenFingerprint.map(tokenFingerprints.contains) ?? false }
        }
        for handle in handles { handle.close(code, reason) }
        return handles.count
    }

    /// The token fingerprints of sessions open or connecting (what token watchers still need).
    public var tokenFingerprintsInUse: Set<String> {
        self.state.withLockedValue { state in
            Set(state.connecting.values).union(state.live.values.compactMap(\.tokenFingerprint))
        }
    }

    /// Live sessions relayed to `target` (its description).
    public func liveSessions(onTarget target: String) -> Int {
        self.state.withLockedValue { $0.perTarget[target, default: 0] }
    }

    /// The live sessions by id (the sessions API).
    public var liveSessions: [UInt64: Handle] {
        self.state.withLockedValue { $0.live }
    }

    /// Asks one live session to close; false if there is no such session (any more).
    public func closeSession(id: UInt64, code: UInt16, reason: String) -> Bool {
        guard let handle = self.state.withLockedValue({ $0.live[id] }) else { return false }
        handle.close(code, reason)
        return true
    }
}
