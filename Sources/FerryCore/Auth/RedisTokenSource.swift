import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Tokens kept in Redis (`--token-redis`), shared by every replica of the relay.
///
/// A handshake's token is looked up with one GET of `NS:TOKEN` on a connection kept open; while
/// Redis is unreachable such handshakes get 503 (live sessions go on) and a background task
/// reconnects with backoff (100 ms doubling to 5 s), warning once per outage and noting recovery.
///
/// Revocation: the keys of live sessions are watched. A second connection subscribes to keyspace
/// notifications for the namespace, so a `del`, `unlink`, `expired` or `evicted` ends the token's
/// sessions with 1008 at once, and a `set` has the key checked again. Ferry does not change the
/// server's configuration, so notifications arrive only if the operator enables them
/// (`notify-keyspace-events Kgx`); twice a second the watched keys are also read again (pipelined
/// GETs), which keeps revocation within 2 s without them (with room for a busy moment), and catches what a dropped subscriber
/// connection missed. A key that is gone, or now names another target, revokes its token.
public final class RedisTokenSource: Sendable {
    public struct Timing: Sendable {
        /// TCP (and TLS) connect, and each command: a lookup must fit in the handshake's budget.
        public var connectTimeout: TimeAmount = .seconds(1)
        public var commandTimeout: TimeAmount = .seconds(1)
        /// How often the watched keys are read again (the fallback for missing notifications).
        public var recheckInterval: TimeAmount = .milliseconds(500)
        public var firstBackoff: TimeAmount = .milliseconds(100)
        public var maxBackoff: TimeAmount = .seconds(5)

        public init() {}
    }

    /// A key some live session's grant came from.
    private struct Watch: Sendable {
        var fingerprint: String
        var target: BackendTarget
        var since: NIODeadline
    }

    private struct State: Sendable {
        var command: RedisConnection?
        var subscriber: RedisConnection?
        var watched: [String: Watch] = [:]
        var supervisor: Task<Void, Never>?
        var stopped = false
    }

    /// Handshakes get this while Redis cannot be asked.
    static let unavailable = HandshakeRejection(.serviceUnavailable, "token store unavailable; try again later")
    /// The most GETs a recheck keeps in flight at once.
    static let recheckBatch = 256

    public let endpoint: RedisEndpoint
    let timing: Timing
    private let tls: NIOSSLContext?
    private let eventLoop: EventLoop
    private let logger: Logger
    private let inUse: @Sendable () -> Set<String>
    private let onRevoked: @Sendable (Set<String>) -> Void
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - inUse: the token fingerprints of sessions open or connecting (watches for others are dropped).
    ///   - onRevoked: ends the sessions of these token fingerprints.
    public init(
        endpoint: RedisEndpoint,
        caPath: String? = nil,
        timing: Timing = Timing(),
        group: EventLoopGroup,
        logger: Logger,
        inUse: @escaping @Sendable () -> Set<String>,
        onRevoked: @escaping @Sendable (Set<String>) -> Void
    ) throws(ConfigurationError) {
        self.endpoint = endpoint
        self.timing = timing
        self.eventLoop = group.next()
        self.logger = logger
        self.inUse = inUse
        self.onRevoked = onRevoked
        if endpoint.usesTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            do {
                if let caPath { configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caPath))] }
                self.tls = try NIOSSLContext(configuration: configuration)
            } catch {
                throw ConfigurationError(flag: caPath == nil ? "--token-redis" : "--token-redis-ca", value: caPath ?? endpoint.description, problem: "cannot build a TLS context (\(error))")
            }
        } else {
            guard caPath == nil else {
                throw ConfigurationError(flag: "--token-redis-ca", value: caPath!, problem: "only applies to TLS", expected: "a rediss:// URL in --token-redis")
            }
            self.tls = nil
        }
    }

    // MARK: Lifetime

    /// Connects once and starts the background task. Redis refusing the password (or the database)
    /// is a start-up error; Redis not answering is not (replicas may start before it), only a warning.
    public func start() async throws(ConfigurationError) {
        var reachable = true
        do {
            let connection = try await self.connect()
            self.state.withLockedValue { $0.command = connection }
            self.logger.info("Redis token store connected", metadata: ["redis": "\(self.endpoint)"])
        } catch let failure as RedisFailure {
            if case .refused(let command, let message) = failure {
                throw ConfigurationError(flag: "--token-redis", value: self.endpoint.description, problem: "Redis refused \(command): \(message)", expected: "the password (and user) Redis is configured with, and a database it has")
            }
            reachable = false
            self.logger.warning("Redis token store unavailable at start; handshakes with its tokens get 503 until it answers", metadata: ["redis": "\(self.endpoint)", "error": "\(failure)"])
        } catch {
            reachable = false
            self.logger.warning("Redis token store unavailable at start; handshakes with its tokens get 503 until it answers", metadata: ["redis": "\(self.endpoint)", "error": "\(error)"])
        }
        let task = Task { await self.supervise(outage: !reachable) }
        self.state.withLockedValue { $0.supervisor = task }
    }

    /// Stops the background task and closes both connections.
    public func stop() async {
        let (task, connections) = self.state.withLockedValue { state in
            state.stopped = true
            defer { state.command = nil; state.subscriber = nil }
            return (state.supervisor, [state.command, state.subscriber].compactMap { $0 })
        }
        task?.cancel()
        await task?.value
        for connection in connections { connection.close() }
    }

    // MARK: Lookup

    /// The target a token's key names; nil for no key (or a value that names no target, logged).
    /// Fails with a 503 rejection while Redis cannot be asked.
    public func lookup(_ token: String, on eventLoop: EventLoop) -> EventLoopFuture<BackendTarget?> {
        guard let connection = self.state.withLockedValue({ $0.command }), connection.isActive else {
            return eventLoop.makeFailedFuture(Self.unavailable)
        }
        let fingerprint = PresentedToken.fingerprint(of: token)
        return connection.send(RESPCommand("GET", self.endpoint.key(for: token))).hop(to: eventLoop).flatMapThrowing { reply in
            switch reply {
            case .bulkString(nil):
                return nil
            case .bulkString(let value?):
                guard let target = RedisTokenValue.target(String(buffer: value)) else {
                    self.logger.error("the token's value in Redis names no target (expected host:port, {\"host\": \"host:port\"} or unix:/path)", metadata: ["token": "\(fingerprint)"])
                    return nil
                }
                return target
            case .error(let message):
                self.logger.warning("Redis refused a token lookup", metadata: ["token": "\(fingerprint)", "error": "\(message)"])
                throw Self.unavailable
            default:
                self.logger.warning("Redis answered a token lookup with something other than a string", metadata: ["token": "\(fingerprint)"])
                throw Self.unavailable
            }
        }.flatMapErrorThrowing { error in
            if error is HandshakeRejection { throw error }
            self.logger.warning("token lookup in Redis failed", metadata: ["token": "\(fingerprint)", "error": "\(error)"])
            throw Self.unavailable
        }
    }

    /// Remembers that a session was granted `target` by this token, so its key's removal revokes it.
    public func watch(token: String, fingerprint: String, target: BackendTarget) {
        let key = self.endpoint.key(for: token)
        self.state.withLockedValue { $0.watched[key] = Watch(fingerprint: fingerprint, target: target, since: .now()) }
    }

    /// Keys watched now (tests).
    var watchedCount: Int { self.state.withLockedValue { $0.watched.count } }

    // MARK: Background

    /// Keeps the command connection (reconnecting with backoff) and the subscriber, and rechecks the
    /// watched keys every `recheckInterval`, until cancelled.
    private func supervise(outage startedDown: Bool) async {
        var outage = startedDown
        var backoff = self.timing.firstBackoff
        var subscribeWarned = false
        while !Task.isCancelled {
            do {
                let connection: RedisConnection
                if let current = self.state.withLockedValue({ $0.command }), current.isActive {
                    connection = current
                } else {
                    connection = try await self.connect()
                    guard self.state.withLockedValue({ state in
                        if state.stopped { return false }
                        state.command = connection
                        return true
                    }) else {
                        connection.close()
                        return
                    }
                    if outage { self.logger.info("Redis token store reachable again", metadata: ["redis": "\(self.endpoint)"]) }
                }
                outage = false
                backoff = self.timing.firstBackoff
                if self.state.withLockedValue({ $0.subscriber?.isActive != true }) {
                    do {
                        try await self.subscribe()
                        subscribeWarned = false
                    } catch {
                        if !subscribeWarned {
                            self.logger.warning("cannot subscribe to Redis keyspace notifications; revocation relies on rechecking every \(self.timing.recheckInterval.nanoseconds / 1_000_000) ms", metadata: ["error": "\(error)"])
                            subscribeWarned = true
                        }
                    }
                }
                try await self.recheck(on: connection)
                try await Task.sleep(nanoseconds: UInt64(self.timing.recheckInterval.nanoseconds))
            } catch is CancellationError {
                return
            } catch {
                if !outage {
                    self.logger.warning("Redis token store unavailable; handshakes with its tokens get 503, live sessions go on; reconnecting", metadata: ["redis": "\(self.endpoint)", "error": "\(error)"])
                    outage = true
                }
                self.state.withLockedValue { $0.command }?.close()
                do {
                    try await Task.sleep(nanoseconds: UInt64(backoff.nanoseconds))
                } catch {
                    return
                }
                backoff = min(backoff * 2, self.timing.maxBackoff)
            }
        }
    }

    private func connect(onMessage: (@Sendable (RESPValue) -> Void)? = nil) async throws -> RedisConnection {
        try await RedisConnection.connect(
            to: self.endpoint,
            tls: self.tls,
            on: self.eventLoop,
            connectTimeout: self.timing.connectTimeout,
            commandTimeout: self.timing.commandTimeout,
            onMessage: onMessage
        )
    }

    /// A subscriber connection for the namespace's keyspace events.
    private func subscribe() async throws {
        let prefix = "__keyspace@\(self.endpoint.database)__:"
        let connection = try await self.connect { [weak self] message in self?.received(message, prefix: prefix) }
        let pattern = prefix + (self.endpoint.namespace.map { Self.escapeGlob($0) + ":*" } ?? "*")
        let reply = try await connection.send(RESPCommand("PSUBSCRIBE", pattern)).get()
        guard case .array(let items?) = reply, items.first?.string == "psubscribe" else {
            connection.close()
            throw RedisFailure.refused(command: "PSUBSCRIBE", message: reply.string ?? "\(reply)")
        }
        let previous = self.state.withLockedValue { state -> RedisConnection? in
            defer { state.subscriber = connection }
            return state.subscriber
        }
        previous?.close()
    }

    /// A keyspace event: `["pmessage", pattern, "__keyspace@0__:KEY", EVENT]`.
    private func received(_ message: RESPValue, prefix: String) {
        guard case .array(let items?) = message, items.count == 4, let channel = items[2].string, let event = items[3].string,
            channel.hasPrefix(prefix)
        else { return }
        let key = String(channel.dropFirst(prefix.count))
        switch event {
        case "del", "unlink", "expired", "evicted", "rename_from", "move_from":
            let fingerprint = self.state.withLockedValue { $0.watched.removeValue(forKey: key)?.fingerprint }
            if let fingerprint { self.revoke([fingerprint], why: event) }
        case "set", "rename_to", "move_to", "restore":
            guard let watch = self.state.withLockedValue({ $0.watched[key] }), let connection = self.state.withLockedValue({ $0.command }) else { return }
            connection.send(RESPCommand("GET", key)).whenSuccess { reply in
                if self.isRevoked(by: reply, watch: watch) {
                    self.state.withLockedValue { _ = $0.watched.removeValue(forKey: key) }
                    self.revoke([watch.fingerprint], why: "changed")
                }
            }
        default:
            return
        }
    }

    /// Reads every watched key again (dropping keys no session uses any more) and revokes the tokens
    /// whose key is gone or names another target.
    private func recheck(on connection: RedisConnection) async throws {
        let inUse = self.inUse()
        let settled = NIODeadline.now() - .seconds(30)
        let watched = self.state.withLockedValue { state -> [(String, Watch)] in
            // A watch younger than a handshake may belong to a session not yet registered.
            state.watched = state.watched.filter { inUse.contains($0.value.fingerprint) || $0.value.since > settled }
            return Array(state.watched)
        }
        var revoked: Set<String> = []
        var start = 0
        while start < watched.count {
            let batch = watched[start..<min(start + Self.recheckBatch, watched.count)]
            start += batch.count
            let replies = batch.map { connection.send(RESPCommand("GET", $0.0)) }
            for ((key, watch), reply) in zip(batch, replies) {
                if self.isRevoked(by: try await reply.get(), watch: watch) {
                    revoked.insert(watch.fingerprint)
                    self.state.withLockedValue { _ = $0.watched.removeValue(forKey: key) }
                }
            }
        }
        if !revoked.isEmpty { self.revoke(revoked, why: "recheck") }
    }

    /// A missing key, or one naming another target, revokes; an error reply does not (Redis may be
    /// busy loading; the next check decides).
    private func isRevoked(by reply: RESPValue, watch: Watch) -> Bool {
        switch reply {
        case .bulkString(nil): return true
        case .bulkString(let value?): return RedisTokenValue.target(String(buffer: value)) != watch.target
        default: return false
        }
    }

    private func revoke(_ fingerprints: Set<String>, why: String) {
        self.logger.info("tokens removed from Redis; ending their sessions", metadata: ["tokens": "\(fingerprints.sorted().joined(separator: ","))", "event": "\(why)"])
        self.onRevoked(fingerprints)
    }

    /// Escapes `*?[]\` so a namespace is matched literally in a PSUBSCRIBE pattern.
    static func escapeGlob(_ text: String) -> String {
        var out = ""
        for character in text {
            if "*?[]\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
