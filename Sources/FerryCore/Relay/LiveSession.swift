import Foundation
import NIOCore

/// What the admin port's sessions API shows of a live session that does not change while it runs.
/// Holds no payload and no credentials: the token appears as its fingerprint only.
public struct LiveSessionFacts: Sendable, Equatable {
    /// The client (the TCP peer, or who a trusted proxy says it is).
    public var client: String
    /// The proxy the client came through, when the client is not the TCP peer.
    public var via: String?
    public var route: String
    public var target: String
    public var tokenFingerprint: String?
    /// The common name of the client's verified certificate, if it presented one.
    public var clientCertificateCN: String?
    public var started: Date

    public init(client: String, via: String? = nil, route: String, target: String, tokenFingerprint: String? = nil, clientCertificateCN: String? = nil, started: Date) {
        self.client = client
        self.via = via
        self.route = route
        self.target = target
        self.tokenFingerprint = tokenFingerprint
        self.clientCertificateCN = clientCertificateCN
        self.started = started
    }
}

/// What changes while a session runs, read on its event loop when asked for.
public struct LiveSessionCounters: Sendable, Equatable {
    public var bytesToBackend: UInt64
    public var bytesToClient: UInt64
    /// The last payload byte either way.
    public var lastActivity: Date

    public init(bytesToBackend: UInt64, bytesToClient: UInt64, lastActivity: Date) {
        self.bytesToBackend = bytesToBackend
        self.bytesToClient = bytesToClient
        self.lastActivity = lastActivity
    }
}
