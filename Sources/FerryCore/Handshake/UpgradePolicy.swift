import NIOCore
import NIOHTTP1

/// What an accepted handshake leads to: the route it matched and the backend to connect.
public struct UpgradePlan: Sendable, Equatable {
    public var route: Route
    public var target: BackendTarget
    public var subprotocol: String?
}

/// The upgrade decision: route, then Origin (later: tokens). It answers with a future so that checks
/// which must wait (a token lookup, a rate limiter) fit without changing the handshake handler; a
/// failed future carries a ``HandshakeRejection``.
public struct UpgradePolicy: Sendable {
    public var routes: RouteTable
    public var originPolicy: OriginPolicy

    public init(routes: RouteTable, originPolicy: OriginPolicy) {
        self.routes = routes
        self.originPolicy = originPolicy
    }

    public func decide(
        head: HTTPRequestHead,
        handshake: WebSocketHandshake,
        clientIdentity: ClientIdentity? = nil,
        eventLoop: EventLoop
    ) -> EventLoopFuture<UpgradePlan> {
        eventLoop.makeCompletedFuture { () throws(HandshakeRejection) in
            try self.decide(head: head, handshake: handshake, clientIdentity: clientIdentity)
        }
    }

    /// The synchronous part of the decision, for tests and for checks that need nothing to wait on.
    /// `clientIdentity` is the verified client certificate, if the connection has one.
    public func decide(
        head: HTTPRequestHead,
        handshake: WebSocketHandshake,
        clientIdentity: ClientIdentity? = nil
    ) throws(HandshakeRejection) -> UpgradePlan {
        guard let route = self.routes.match(requestTarget: head.uri) else {
            throw .notFound("no route for this path")
        }
        let origin = head.headers.first(name: "Origin")
        guard self.originPolicy.allows(origin: origin, host: head.headers.first(name: "Host")) else {
            throw .forbidden("origin not allowed")
        }
        if !route.options.clientNames.isEmpty {
            guard let clientIdentity else { throw .forbidden("this route needs a client certificate") }
            guard clientIdentity.isAllowed(by: route.options.clientNames) else {
                throw .forbidden("client certificate not allowed on this route")
            }
        }
        return UpgradePlan(route: route, target: route.target, subprotocol: handshake.subprotocol)
    }
}
