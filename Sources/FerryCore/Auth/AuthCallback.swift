import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// Asks the `--auth-url` service about a handshake: one `GET` with the request's facts in headers,
/// read into an ``AuthCallbackDecision``. The answer is remembered for its `max-age`
/// (``AuthDecisionCache``). Bounded everywhere: each request by `--auth-timeout` and the handshake's
/// budget, the body read by ``maxBody``, requests in flight by `maxConcurrentRequests` (beyond it
/// 503 at once). Redirects are not followed, so the token reaches only the configured URL.
public final class AuthCallback: Sendable {
    /// The most of an answer's body read; a longer one is "unavailable".
    static let maxBody = 16 * 1024

    public let options: AuthCallbackOptions
    private let configuration: HTTPClient.Configuration
    private let group: any EventLoopGroup
    /// Made by ``start()`` and ended by ``shutdown()``: an HTTPClient must be shut down before it goes,
    /// so none exists for a server that never starts.
    private let client = NIOLockedValueBox<HTTPClient?>(nil)
    private let cache: NIOLockedValueBox<AuthDecisionCache>
    private let inFlight = NIOLockedValueBox(0)
    private let logger: Logger

    public init(options: AuthCallbackOptions, group: EventLoopGroup, logger: Logger) throws(ConfigurationError) {
        self.options = options
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let path = options.caPath {
            do {
                tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(path))]
            } catch {
                throw ConfigurationError(flag: "--auth-ca", value: path, problem: "cannot read the certificates (\(error))", expected: "a PEM file of CA certificates")
            }
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: options.timeout, read: options.timeout),
            proxy: nil,
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        // A refused connection fails the request at once, with its reason in the log, instead of
        // being retried with backoff until the handshake's budget is spent: the client is told 503
        // a second or two sooner, and the operator reads "connection refused", not a timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.configuration = configuration
        self.group = group
        self.cache = NIOLockedValueBox(
            AuthDecisionCache(maxEntries: options.maxCacheEntries, maxAge: options.cacheMax, refusalMaxAge: options.refusalCacheMax)
        )
    }

    /// Makes the HTTP client (on the relay's event loops).
    public func start() {
        self.client.withLockedValue { client in
            if client == nil { client = HTTPClient(eventLoopGroup: self.group, configuration: self.configuration) }
        }
    }

    /// Ends the client's connections; requests still running fail (their handshakes get 503).
    public func shutdown() async {
        let client = self.client.withLockedValue { client in
            defer { client = nil }
            return client
        }
        try? await client?.shutdown()
    }

    /// Decisions cached now (tests).
    var cachedCount: Int { self.cache.withLockedValue { $0.count } }

    /// The decision for `request`, completed on `eventLoop`; never a failed future. `deadline` (the
    /// handshake's) cuts the request short of `--auth-timeout`; `useCache: false` asks the service
    /// whatever was cached (a revalidation must hear the service's current word).
    public func decide(
        _ request: AuthCallbackRequest,
        deadline: NIODeadline? = nil,
        useCache: Bool = true,
        eventLoop: EventLoop
    ) -> EventLoopFuture<AuthCallbackDecision> {
        let key = request.cacheKey
        if useCache, let cached = self.cache.withLockedValue({ $0.decision(for: key, now: .now()) }) {
            return eventLoop.makeSucceededFuture(cached)
        }
        let until = min(deadline ?? .distantFuture, .now() + self.options.timeout)
        guard until > .now() else {
            return eventLoop.makeSucceededFuture(self.unavailable("no time left in the handshake's budget", request: request))
        }
        let admitted = self.inFlight.withLockedValue { count in
            guard count < self.options.maxConcurrentRequests else { return false }
            count += 1
            return true
        }
        guard admitted else {
            return eventLoop.makeSucceededFuture(self.unavailable("\(self.options.maxConcurrentRequests) requests already in flight", request: request))
        }
        let promise = eventLoop.makePromise(of: AuthCallbackDecision.self)
        let finished = NIOLockedValueBox(false)
        let finish: @Sendable (AuthCallbackDecision) -> Void = { decision in
            guard finished.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            if case .unavailable(let reason) = decision { self.logUnavailable(reason, request: request) }
            promise.succeed(decision)
        }
        let asked = self.ask(request, until: until, eventLoop: eventLoop)
        asked.answer.whenSuccess { answer in
            self.inFlight.withLockedValue { $0 -= 1 }
            self.cache.withLockedValue { $0.store(answer.decision, maxAge: answer.maxAge, for: key, now: .now()) }
            finish(answer.decision)
        }
        // The client's own deadline should end the request; this makes sure the handshake hears in time.
        let allowed = Self.milliseconds(until - .now())
        let timer = eventLoop.scheduleTask(deadline: until + .milliseconds(50)) {
            asked.cancel()
            finish(.unavailable(reason: "no answer within \(allowed) ms"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    /// One request, answered on `eventLoop` (the handshake's) from one of the client's pooled
    /// connections, with no Swift task in between: against the async API this took a third off an
    /// uncached handshake's time (BENCHMARKS.md). Requiring the connection on the same loop too
    /// (`.delegateAndChannel`) made the pool open a connection per request, so it is not asked for.
    /// Every failure becomes `.unavailable` with its reason.
    private func ask(_ request: AuthCallbackRequest, until: NIODeadline, eventLoop: EventLoop) -> (answer: EventLoopFuture<AuthCallbackAnswer>, cancel: @Sendable () -> Void) {
        guard let client = self.client.withLockedValue({ $0 }) else {
            return (eventLoop.makeSucceededFuture(AuthCallbackAnswer(decision: .unavailable(reason: "the relay is not running"))), {})
        }
        var headers = HTTPHeaders()
        headers.add(name: "User-Agent", value: "ferry")
        headers.add(name: "Accept", value: "application/json, text/plain")
        for header in request.headers { headers.add(name: header.name, value: header.value) }
        let http: HTTPClient.Request
        do {
            http = try HTTPClient.Request(url: self.options.url(token: request.token), method: .GET, headers: headers)
        } catch {
            return (eventLoop.makeSucceededFuture(AuthCallbackAnswer(decision: .unavailable(reason: "the request cannot be made: \(error)"))), {})
        }
        let delegate = ResponseAccumulator(request: http, maxBodySize: Self.maxBody)
        let task = client.execute(request: http, delegate: delegate, eventLoop: .delegate(on: eventLoop), deadline: until)
        let token = request.token
        let answer = task.futureResult.map { response in
            AuthCallbackAnswer.read(status: Int(response.status.code), headers: response.headers, body: response.body ?? ByteBuffer(), token: token)
        }.recover { error in
            switch error {
            case is ResponseAccumulator.ResponseTooBigError:
                return AuthCallbackAnswer(decision: .unavailable(reason: "the answer's body is over \(Self.maxBody / 1024) KiB"))
            case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout:
                return AuthCallbackAnswer(decision: .unavailable(reason: "no answer within the time allowed"))
            default:
                return AuthCallbackAnswer(decision: .unavailable(reason: "the request failed: \(error)"))
            }
        }.hop(to: eventLoop)
        return (answer, { task.cancel() })
    }

    /// Logs why (with the URL as configured, never with the token in it); returns the decision.
    private func unavailable(_ reason: String, request: AuthCallbackRequest) -> AuthCallbackDecision {
        self.logUnavailable(reason, request: request)
        return .unavailable(reason: reason)
    }

    private func logUnavailable(_ reason: String, request: AuthCallbackRequest) {
        self.logger.warning(
            "authorization service unavailable; the handshake gets 503",
            metadata: ["auth-url": "\(self.options.url)", "reason": "\(reason)", "route": "\(request.route)", "credential": "\(request.credentialFingerprint)"]
        )
    }

    private static func milliseconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000 }
}
