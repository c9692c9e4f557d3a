import Logging

/// What ``HTTPHandshakeHandler`` uses, and nothing more: the server builds it once and hands the same
/// value to every connection, so the handshake does not reach into the server's whole environment.
struct HandshakeServices: Sendable {
    var policy: UpgradePolicy
    var connector: BackendConnector
    var registry: SessionRegistry
    var limits: Limits
    var metrics: FerryMetrics
    /// `--max-handshakes-per-second-per-ip`; nil when off.
    var handshakeRate: HandshakeRateLimiter?
    var plainRequests: PlainRequestAnswers
    /// Whose forwarding headers are believed (`--trusted-proxy`).
    var trustedProxies: [AddressBlock]
    var trustsUnixSocketPeers: Bool
    /// What every session is assembled with.
    var sessionParts: SessionAssembly.Shared
    var payloadPools: PayloadBufferPools
    var logger: Logger
}
