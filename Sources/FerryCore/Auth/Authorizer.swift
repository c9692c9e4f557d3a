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
public final class Authorizer: Sendable {
    /// What a valid token grants.
    public struct Grant: Sendable, Equatable {
        public var target: BackendTarget
        /// The token's fingerprint, for logs and revocation.
        public var tokenFingerprint: String
        /// When the session must end (`--jwt-enforce-expiry-on-session`).
        public var expiresAt: Date?
    }

    public let options: AuthOptions
    /// `--token-file` and `--token-filenames`, in that order.
    public let tokenTables: [TokenFileSource]
    /// `--token-redis`.
    public let redis: RedisTokenSource?
    private let jwt = NIOLockedValueBox<JWTVerifier?>(nil)
    private let allowlist: TargetAllowlist
    private let limiter: FailureLimiter

    public init(options: AuthOptions, tokenTables: [TokenFileSource], redis: RedisTokenSource? = nil) {
        self.options = options
        self.tokenTables = tokenTables
        self.redis = redis
        self.allowlist = TargetAllowlist(rules: options.allowedTargets, allowsAny: options.allowsAnyTarget)
        self.limiter = FailureLimiter(limit: options.failureLimit, window: TimeAmount(options.failureWindow))
    }

    /// Loads the JWT key (jwt-kit's key store is an actor, so this is async and runs before listening).
    /// Also connects to Redis (a refused password is a start-up error).
    public func prepare() async throws(ConfigurationError) {
        try await self.redis?.start()
        guard let path = self.options.jwtKeyPath else { return }
        let verifier = try await JWTVerifier(keyPath: path, issuer: self.options.jwtIssuer, audience: self.options.jwtAudience, leeway: self.options.jwtLeeway, secretEncoding: self.options.jwtSecretEncoding)
        self.jwt.withLockedValue { $0 = verifier }
    }

    /// Stops what ``prepare()`` started (the Redis connections).
    public func shutdown() async {
        await self.redis?.stop()
    }

    public func authorize(
        route: Route,
        token: PresentedToken?,
        clientAddress: String,
        eventLoop: EventLoop
    ) -> EventLoopFuture<Grant> {
        if self.limiter.isBlocked(clientAddress) {
            return eventLoop.makeFailedFuture(HandshakeRejection(.tooManyRequests, "too many failed attempts; try again later"))
        }
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
        return result.flatMapErrorThrowing { error in
            if let rejection = error as? HandshakeRejection, rejection.status == .forbidden {
                self.limiter.recordFailure(clientAddress)
            }
            throw error
        }
    }

    /// A static route accepts only a token for its own target; a dynamic one checks the allowlist.
    private func grant(target: BackendTarget, route: Route, fingerprint: String, expiresAt: Date?, eventLoop: EventLoop) -> EventLoopFuture<Grant> {
        guard case .dynamic = route.target else {
            guard target == route.target else {
                return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "token not valid for this route"))
            }
            return eventLoop.makeSucceededFuture(Grant(target: target, tokenFingerprint: fingerprint, expiresAt: expiresAt))
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
