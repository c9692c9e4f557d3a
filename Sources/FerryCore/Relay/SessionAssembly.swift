import Foundation
import Logging
import NIOCore

/// What a spliced session is made of, put together in one place: its summary, the splice with its
/// client and backend handlers, its recorder, and its handle in the registry. The handshake decides
/// and rewires the pipelines; this is what it hands the connection over to. From ``init`` on the
/// session is live: a shutdown or a token revocation reaches it, even before its 101 is written.
struct SessionAssembly {
    /// Who the session is for and where it goes, as the handshake decided.
    struct Description {
        /// The client (the TCP peer, or who a trusted proxy says it is), for logs.
        var client: String
        /// The proxy the client came through, when the client is not the TCP peer.
        var via: String?
        var route: String
        var target: String
        var tokenFingerprint: String?
        /// When the token expires, if the session must end then (`--jwt-enforce-expiry-on-session`).
        var expiresAt: Date?
        /// The common name of the client's verified certificate.
        var clientCertificateCN: String? = nil
        /// The route is a pool: its sessions are counted per target in `/metrics`.
        var inPool = false
        /// The session is a stream of an HTTP/2 connection (RFC 8441), not a connection of its own.
        var overHTTP2 = false
    }

    /// The building blocks a session uses, shared by every session of a server.
    struct Shared {
        var registry: SessionRegistry
        /// Read as each session starts: a reload may change them.
        var liveLimits: LiveLimits
        var metrics: FerryMetrics
        /// Where session-end lines go.
        var accessLogger: Logger
        var recording: RecordingSink?

        var limits: Limits { self.liveLimits.current }

        init(registry: SessionRegistry, liveLimits: LiveLimits, metrics: FerryMetrics, accessLogger: Logger, recording: RecordingSink?) {
            self.registry = registry
            self.liveLimits = liveLimits
            self.metrics = metrics
            self.accessLogger = accessLogger
            self.recording = recording
        }

        init(registry: SessionRegistry, limits: Limits, metrics: FerryMetrics, accessLogger: Logger, recording: RecordingSink?) {
            self.init(registry: registry, liveLimits: LiveLimits(limits), metrics: metrics, accessLogger: accessLogger, recording: recording)
        }
    }

    let splice: Splice
    let clientHandler: WebSocketSessionHandler
    let backendHandler: BackendHandler
    /// False if the session's token was revoked while its backend connected: once wired, it is
    /// closed with 1008.
    let tokenStillValid: Bool

    /// - Parameters:
    ///   - slot: the registry slot reserved for the handshake; released when the session ends.
    ///   - started: when the backend connect began (the session's start in its summary).
    init(_ description: Description, slot: UInt64, started: NIODeadline, shared: Shared, logger: Logger, eventLoop: EventLoop) {
        let connectNanoseconds = (NIODeadline.now() - started).nanoseconds
        let summary = SessionSummary(
            client: description.client,
            route: description.route,
            target: description.target,
            started: started,
            tokenFingerprint: description.tokenFingerprint,
            via: description.via,
            backendConnectMilliseconds: connectNanoseconds / 1_000_000,
            http: description.overHTTP2 ? "2" : "1.1"
        )
        if description.overHTTP2 { shared.metrics.http2SessionStarted() }
        shared.metrics.backendConnected(route: description.route, nanoseconds: connectNanoseconds)
        var accessLogger = shared.accessLogger
        accessLogger[metadataKey: "client"] = logger[metadataKey: "client"]
        let registry = shared.registry
        let metrics = shared.metrics
        let inPool = description.inPool
        if inPool { metrics.poolTargetSessions(route: description.route, target: description.target, delta: 1) }
        let splice = Splice(summary: summary, logger: accessLogger, metrics: shared.metrics, recorder: shared.recording?.startSession(logger: logger)) {
            registry.release(slot)
            if inPool { metrics.poolTargetSessions(route: summary.route, target: summary.target, delta: -1) }
        }
        let expiresIn = description.expiresAt.map { TimeAmount.milliseconds(Int64(max(0, $0.timeIntervalSinceNow) * 1000)) }
        let limits = shared.limits
        self.clientHandler = WebSocketSessionHandler(splice: splice, limits: limits, expiresIn: expiresIn)
        self.backendHandler = BackendHandler(owner: splice, closeTimeout: limits.closeTimeout)
        splice.attach(client: self.clientHandler, backend: self.backendHandler)
        self.splice = splice

        let facts = LiveSessionFacts(
            client: description.client,
            via: description.via,
            route: description.route,
            target: description.target,
            tokenFingerprint: description.tokenFingerprint,
            clientCertificateCN: description.clientCertificateCN,
            started: Date(timeIntervalSinceNow: -Double((NIODeadline.now() - started).nanoseconds) / 1e9)
        )
        let loopBound = NIOLoopBound(splice, eventLoop: eventLoop)
        let clientBound = NIOLoopBound(self.clientHandler, eventLoop: eventLoop)
        self.tokenStillValid = registry.activate(
            slot,
            handle: .init(
                facts: facts,
                counters: {
                    eventLoop.submit {
                        let bytes = loopBound.value.byteCounts
                        let idle = Double((NIODeadline.now() - clientBound.value.lastData).nanoseconds) / 1e9
                        return LiveSessionCounters(bytesToBackend: bytes.toBackend, bytesToClient: bytes.toClient, lastActivity: Date(timeIntervalSinceNow: -idle))
                    }
                },
                close: { code, reason in
                    eventLoop.execute { loopBound.value.close(code: code, reason: reason) }
                }
            )
        )
    }
}
