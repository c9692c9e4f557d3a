import Logging
import NIOCore

/// What ``HTTPHandshakeHandler`` uses, and nothing more: the server builds it once and hands the same
/// value to every connection, so the handshake does not reach into the server's whole environment.
struct HandshakeServices: Sendable {
    var policy: UpgradePolicy
    /// ``BackendConnector`` in a server. A test hands in connects it finishes by hand, so the 101 and
    /// a pending connect run on an `EmbeddedChannel`, with no socket.
    var connector: any BackendConnecting
    var registry: SessionRegistry
    /// The order a pool's targets are tried in, and their health.
    var pools: BackendPools
    /// Read per handshake: a reload may change them.
    var liveLimits: LiveLimits
    var metrics: FerryMetrics
    /// `--max-handshakes-per-second-per-ip` (a rate of 0 lets every handshake through).
    var handshakeRate: HandshakeRateLimiter
    var plainRequests: PlainRequestAnswers
    /// Whose forwarding headers are believed (`--trusted-proxy`).
    var trustedProxies: [AddressBlock]
    var trustsUnixSocketPeers: Bool
    /// What every session is assembled with.
    var sessionParts: SessionAssembly.Shared
    var payloadPools: PayloadBufferPools
    var logger: Logger

    var limits: Limits { self.liveLimits.current }
}

/// How the handshake opens a session's backend: ``BackendConnector/connect(to:options:proxyHeader:timeout:attempt:on:)``
/// does the work. The future must complete on `eventLoop`, with the channel's auto-read off.
protocol BackendConnecting: Sendable {
    func connect(
        to target: BackendTarget,
        options: RouteOptions,
        proxyHeader: ByteBuffer?,
        timeout: TimeAmount?,
        attempt: BackendConnectAttempt?,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<Channel>
}

extension BackendConnector: BackendConnecting {}
