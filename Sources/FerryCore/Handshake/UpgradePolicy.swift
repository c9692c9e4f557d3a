import Foundation
import NIOCore
import NIOHTTP1

/// What an accepted handshake leads to: the route it matched and the backend to connect.
public struct UpgradePlan: Sendable, Equatable {
    public var route: Route
    public var target: BackendTarget
    public var subprotocol: String?
    /// The fingerprint of the token that authorized the session, if one did.
    public var tokenFingerprint: String? = nil
    /// When the session must be closed because its token expires.
    public var expiresAt: Date? = nil
    /// What the `--auth-url` service was asked, when it let the session in (`--auth-revalidate`).
    public var callbackRequest: AuthCallbackRequest? = nil
}

/// The upgrade decision: route, then Origin, then client certificate, then Basic credentials, then tokens
/// (or the `--auth-url` service). It answers with a future because token checks can wait (a JWT
/// signature check, a DNS lookup for a dynamic target, the service's answer); a failed future carries
/// a ``HandshakeRejection``.
public struct UpgradePolicy: Sendable {
    /// The routes and Origin rules, which a configuration reload replaces while the relay runs.
    public let live: LiveRouting
    public var authorizer: Authorizer?
    /// `--basic-auth`; nil: none asked for.
    public var basicCredentials: BasicCredentials?

    public var routes: RouteTable { self.live.current.routes }
    public var originPolicy: OriginPolicy { self.live.current.originPolicy }

    public init(routes: RouteTable, originPolicy: OriginPolicy, authorizer: Authorizer? = nil, basicCredentials: BasicCredentials? = nil) {
        self.live = LiveRouting(routes: routes, originPolicy: originPolicy)
        self.authorizer = authorizer
        self.basicCredentials = basicCredentials
    }

    public func decide(
        head: HTTPRequestHead,
        handshake: WebSocketHandshake,
        clientIdentity: ClientIdentity? = nil,
        clientAddress: String = "",
        secure: Bool = false,
        deadline: NIODeadline? = nil,
        eventLoop: EventLoop
    ) -> EventLoopFuture<UpgradePlan> {
        let plan: UpgradePlan
        do {
            plan = try self.decide(head: head, handshake: handshake, clientIdentity: clientIdentity)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        guard plan.route.needsAuthorization else { return eventLoop.makeSucceededFuture(plan) }
        guard let authorizer = self.authorizer else {
            return eventLoop.makeFailedFuture(HandshakeRejection(.forbidden, "no token source configured"))
        }
        let token = PresentedToken.find(in: head, cookieName: authorizer.options.tokenCookie, fromHost: authorizer.options.tokenFromHost)
        let callbackRequest = authorizer.callback.map { _ in
            AuthCallbackRequest(
                head: head,
                route: plan.route.path,
                token: token?.value,
                clientAddress: clientAddress,
                clientCertificateCN: clientIdentity?.commonName,
                secure: secure
            )
        }
        return authorizer.authorize(
            route: plan.route,
            token: token,
            clientAddress: clientAddress,
            callbackRequest: callbackRequest,
            deadline: deadline,
            eventLoop: eventLoop
        ).map { grant in
            var authorized = plan
            authorized.target = grant.target
            authorized.tokenFingerprint = grant.tokenFingerprint
            authorized.expiresAt = grant.expiresAt
            authorized.callbackRequest = grant.callbackRequest
            return authorized
        }
    }

    /// The checks that need nothing to wait on: route, Origin, client certificate.
    /// `clientIdentity` is the verified client certificate, if the connection has one.
    public func decide(
        head: HTTPRequestHead,
        handshake: WebSocketHandshake,
        clientIdentity: ClientIdentity? = nil
    ) throws(HandshakeRejection) -> UpgradePlan {
        let live = self.live.current
        guard let route = live.routes.match(requestTarget: head.uri) else {
            throw .notFound("no route for this path")
        }
        let origin = head.headers.first(name: "Origin")
        if let refusal = live.originPolicy.refusal(origin: origin, host: head.headers.first(name: "Host")) {
            throw .forbidden(refusal)
        }
        if !route.options.clientNames.isEmpty {
            guard let clientIdentity else { throw .forbidden("this route needs a client certificate") }
            guard clientIdentity.isAllowed(by: route.options.clientNames) else {
                throw .forbidden("client certificate not allowed on this route")
            }
        }
        if let basic = self.basicCredentials, let refusal = basic.check(head.headers) {
            throw refusal
        }
        return UpgradePlan(route: route, target: route.target, subprotocol: handshake.subprotocol)
    }
}
