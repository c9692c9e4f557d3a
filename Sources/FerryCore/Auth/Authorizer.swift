import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The token part of the upgrade decision, for routes with `auth=token` and for `dynamic` routes.
///
/// Token sources are asked in order: token tables (`--token-file`, `--token-filenames`), the socket
/// folder (`--token-sockets`: the token names a socket in it), a JWT, then Redis (`--token-redis`,
/// which names the target like a table entry). A table entry authorizes a
/// route whose target is the entry's target; a JWT authorizes a route its `route` claim names, or
/// whose target its `host`/`port` (or `unix`) claims name. On a dynamic route the token names the
/// target, which must pass the ``TargetAllowlist`` (a socket from the socket folder is allowed by
/// that folder). Answers: no token 401; an invalid, expired or unsuitable token 403; a target not
/// allowed 403; an address with too many failures 429; Redis unreachable 503.
///
/// The `--auth-url` service (``AuthCallback``) decides routes with `auth=url` alone, and `dynamic`
/// routes when no token source does (no token, or one they refuse); its 401 and 403 reach the client,
/// and anything else from it is 503.
public final class Authorizer: Sendable {
    /// What a valid token grants.
    public struct Grant: Sendable, Equatable {
        public var target: BackendTarget
        /// The token's fingerprint, for logs and revocation; nil when the service let in a client
        /// that presented no token.
        public var tokenFingerprint: String?
        /// When the session must end (`--jwt-enforce-expiry-on-session`).
        public var expiresAt: Date?
        /// What the `--auth-url` service was asked, when it decided (`--auth-revalidate` asks again).
        public var callbackRequest: AuthCallbackRequest? = nil
    }

    public let options: AuthOptions
    /// `--token-file` and `--token-filenames`, in that order.
    public let tokenTables: [TokenFileSource]
    /// `--token-redis`.
    public let redis: RedisTokenSource?
    /// `--auth-url`.
    public let callback: AuthCallback?
    /// `--auth-revalidate`.
    public let revalidation: AuthRevalidation?
    private let jwt = NIOLockedValueBox<JWTVerifier?>(nil)
    private let allowlist: TargetAllowlist
    private let limiter: FailureLimiter

    public init(
        options: AuthOptions,
        tokenTables: [TokenFileSource],
        redis: RedisTokenSource? = nil,
        callback: AuthCallback? = nil,
        revalidation: AuthRevalidation? = nil
    ) {
        self.options = options
        self.tokenTables = tokenTables
        self.redis = redis
        self.callback = callback
        self.revalidation = revalidation
        self.allowlist = TargetAllowlist(rules: options.allowedTargets, allowsAny: options.allowsAnyTarget)
        self.limiter = FailureLimiter(limit: options.failureLimit, window: TimeAmount(options.failureWindow))
    }

    /// Loads the JWT key (jwt-kit's key store is an actor, so this is async and runs before listening).
    /// Also connects to Redis (a refused password is a start-up error) and starts the `--auth-url` client.
    public func prepare() async throws(ConfigurationError) {
        try await self.redis?.start()
        if let path = self.options.jwtKeyPath {
            let verifier = try await JWTVerifier(keyPath: path, issuer: self.options.jwtIssuer, audience: self.options.jwtAudience, leeway: self.options.jwtLeeway, secretEncoding: self.options.jwtSecretEncoding)
            self.jwt.withLockedValue { $0 = verifier }
        }
        // Last, as nothing after it can fail: a started client must be shut down.
        self.callback?.start()
        self.revalidation?.start()
    }

    /// Stops what ``prepare()`` started (the Redis connections, revalidation) and the service's client.
    public func shutdown() async {
        await self.redis?.stop()
        await self.revalidation?.stop()
        await self.callback?.shutdown()
    }

    /// - Parameters:
    ///   - callbackRequest: what the `--auth-url` service would be asked (nil without one).
    ///   - deadline: the handshake's budget, which a request to the service must end within.
    public func authorize(
        route: Route,
        token: PresentedToken?,
        clientAddress: String,
        callbackRequest: AuthCallbackRequest? = nil,
        deadline: NIODeadline? = nil,
        eventLoop: EventLoop
    ) -> EventLoopFuture<Grant> {
        if self.limiter.isBlocked(clientAddress) {
            return eventLoop.makeFailedFuture(HandshakeRejection(.tooManyRequests, "too many failed attempts; try again later"))
        }
        let result: EventLoopFuture<Grant>
        let isDynamic = route.target == .dynamic
        if route.options.asksAuthService || (isDynamic && self.callback != nil && !self.options.hasTokenSource) {
            result = self.askService(route: route, request: callbackRequest, deadline: deadline, eventLoop: eventLoop)
        } else if isDynamic && self.callback != nil {
            // The token sources first; what they cannot grant, the service may.
            result = self.fromTokenSources(route: route, token: token, eventLoop: eventLoop).flatMapError { error in
                guard let rejection = error as? HandshakeRejection, rejection.status == .unauthorized || rejection.status == .forbidden else {
                    return eventLoop.makeFailedFuture(error)
                }
                return self.askService(route: route, request: callbackRequest, deadline: deadline, eventLoop: eventLoop)
            }
        } else {
            result = self.fromTokenSources(route: route, token: token, eventLoop: eventLoop)
        }
        return result.flatMapErrorThrowing { error in
            if let rejection = error as? HandshakeRejection, rejection.status == .forbidden {
                self.limiter.recordFailure(clientAddress)
            }
            throw error
        }
    }

    /// The `--auth-url` service's decision as a grant: on a dynamic route the target it names, if
    /// `--allow-target` allows it; elsewhere the route's own target.
    private func askService(route: Route, request: AuthCallbackRequest?, deadline: NIODeadline?, eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        guard let callback = self.callback, let request else {
            return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "no authorization service configured"))
        }
        let fingerprint = request.token.map(PresentedToken.fingerprint(of:))
        return callback.decide(request, deadline: deadline, eventLoop: eventLoop).flatMap { decision in
            switch decision {
            case .refused(let rejection):
                return eventLoop.makeFailedFuture(rejection)
            case .unavailable:
                return eventLoop.makeFailedFuture(Self.serviceUnavailable)
            case .allowed(let named):
                guard case .dynamic = route.target else {
                    return eventLoop.makeSucceededFuture(Grant(target: route.target, tokenFingerprint: fingerprint, expiresAt: nil, callbackRequest: request))
                }
                guard let named else {
                    return eventLoop.makeFailedFuture(HandshakeRejection(.serviceUnavailable, "the authorization service named no target; try again later"))
                }
                return self.allowlist.check(named, on: eventLoop).flatMapThrowing { checked in
                    guard let checked else { throw HandshakeRejection(.forbidden, "target not allowed") }
                    return Grant(target: checked, tokenFingerprint: fingerprint, expiresAt: nil, callbackRequest: request)
                }
            }
        }
    }

    /// Handshakes get this when the `--auth-url` service cannot decide (the reason is logged).
    static let serviceUnavailable = HandshakeRejection(.serviceUnavailable, "authorization service unavailable; try again later")

    /// Token files and folders, the socket folder, JWTs, then Redis.
    private func fromTokenSources(route: Route, token: PresentedToken?, eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        guard let token else {
            return eventLoop.makeFailedFuture(HandshakeRejection(.unauthorized, "a token is required"))
        }
        let fingerprint = token.fingerprint
        let result: EventLoopFuture<Grant>
        if let target = self.tokenTables.lazy.compactMap({ $0.target(for: token.value) }).first {
            result = self.grant(target: target, route: route, fingerprint: fingerprint, expiresAt: nil, eventLoop: eventLoop)
        } else if let folder = self.options.tokenSocketFolder, SocketFolder.isSocketName(token.value) {
            result = SocketFolder.socket(named: token.value, in: folder, eventLoop: eventLoop).flatMap { target in
                guard let target else {
                    return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "invalid token"))
                }
                // The folder is the operator's allowlist for its sockets.
                guard case .dynamic = route.target else {
                    return self.grant(target: target, route: route, fingerprint: fingerprint, expiresAt: nil, eventLoop: eventLoop)
                }
                return eventLoop.makeSucceededFuture(Grant(target: target, tokenFingerprint: fingerprint, expiresAt: nil))
            }
        } else if let jwt = self.jwt.withLockedValue({ $0 }), token.value.split(separator: ".").count == 3 {
            let promise = eventLoop.makePromise(of: JWTVerifier.Claims.self)
            promise.completeWithTask { try await jwt.verify(token.value) }
            result = promise.futureResult
                .flatMapErrorThrowing { error in throw Self.rejection(for: error) }
                .flatMap { claims in
                    guard let target = Self.target(of: claims, route: route) else {
                        return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "token not valid for this route"))
                    }
                    let expiry = self.options.enforceExpiryOnSession ? claims.exp?.value : nil
                    return self.grant(target: target, route: route, fingerprint: fingerprint, expiresAt: expiry, eventLoop: eventLoop)
                }
        } else if let redis = self.redis {
            let value = token.value
            result = redis.lookup(value, on: eventLoop).flatMap { target in
                guard let target else {
                    return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "invalid token"))
                }
                return self.grant(target: target, route: route, fingerprint: fingerprint, expiresAt: nil, eventLoop: eventLoop).map { grant in
                    // The key's removal (or a new target in it) ends this session.
                    redis.watch(token: value, fingerprint: fingerprint, target: target)
                    return grant
                }
            }
        } else {
            result = eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "invalid token"))
        }
        return result
    }

    /// A static route accepts only a token for its own target (any of a pool's, granting the pool);
    /// a dynamic one checks the allowlist.
    private func grant(target: BackendTarget, route: Route, fingerprint: String, expiresAt: Date?, eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        guard case .dynamic = route.target else {
            guard route.targets.contains(target) else {
                return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "token not valid for this route"))
            }
            return eventLoop.makeSucceededFuture(Grant(target: route.target, tokenFingerprint: fingerprint, expiresAt: expiresAt))
        }
        return self.allowlist.check(target, on: eventLoop).flatMapThrowing { checked in
            guard let checked else { throw HandshakeRejection(.forbidden, "target not allowed") }
            return Grant(target: checked, tokenFingerprint: fingerprint, expiresAt: expiresAt)
        }
    }

    /// The target a JWT's claims grant on a route: the route itself if named, else the target named
    /// by `host`/`port` or `unix` (which on a static route must be the route's own).
    static func target(of claims: JWTVerifier.Claims, route: Route) -> BackendTarget? {
        var named: BackendTarget?
        if let unix = claims.unix {
            named = .unix(path: unix)
        } else if let host = claims.host, let port = claims.port?.value, (1...65535).contains(port) {
            named = .tcp(host: host, port: port)
        }
        if case .dynamic = route.target { return named }
        if claims.route == route.path { return route.target }
        if let named, named == route.target || Self.sameTCP(named, route.target) { return route.target }
        return nil
    }

    /// `tcp` and `tls` targets with the same host and port name the same service.
    private static func sameTCP(_ lhs: BackendTarget, _ rhs: BackendTarget) -> Bool {
        switch (lhs, rhs) {
        case (.tcp(let a, let p), .tls(let b, let q)): return a == b && p == q
        default: return false
        }
    }

    private static func rejection(for error: Error) -> HandshakeRejection {
        switch error as? JWTVerifier.Failure {
        case .expired: return .init(.forbidden, "token expired")
        case .notYetValid: return .init(.forbidden, "token not yet valid")
        case .wrongIssuer, .wrongAudience: return .init(.forbidden, "token not valid for this relay")
        case .invalid, nil: return .init(.forbidden, "invalid token")
        }
    }
}
