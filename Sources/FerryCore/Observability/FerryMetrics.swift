import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// Ferry's metrics, in swift-metrics types backed by this server's own swift-prometheus registry (no
/// process-wide bootstrap, so tests can run several servers). Everything is counted per session or per
/// handshake, never per read: the data path pays nothing for it.
///
/// The handles a session touches are made once per route (and per close code), not per session:
/// making a handle goes through the registry (a lock, name and label checks, a dictionary lookup,
/// label arrays), and eight of those per session were a measurable part of a handshake's CPU. Routes
/// and close codes are bounded (configured paths; codes the relay checked), so the caches are too.
public final class FerryMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let routes = NIOLockedValueBox<[String: RouteMetrics]>([:])
    private let closeCodes = NIOLockedValueBox<[CloseKey: CoreMetrics.Counter]>([:])

    /// The handles of one route's sessions.
    private struct RouteMetrics: Sendable {
        let sessions: CoreMetrics.Counter
        let active: CoreMetrics.Meter
        let duration: CoreMetrics.Timer
        let bytesToBackend: CoreMetrics.Counter
        let bytesToClient: CoreMetrics.Counter
        let connect: CoreMetrics.Timer
    }

    private struct CloseKey: Hashable, Sendable {
        let code: UInt16?
        let closedBy: String
    }

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["ferry_session_duration_seconds"] = [
            .seconds(1), .seconds(10), .seconds(60), .seconds(300), .seconds(900), .seconds(3600), .seconds(4 * 3600), .seconds(24 * 3600),
        ]
        factory.durationHistogramBuckets["ferry_backend_connect_seconds"] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
        // The Prometheus "info" idiom: a constant 1 whose labels carry the facts.
        Meter(label: "ferry_build_info", dimensions: [("version", FerryVersion.current)], factory: factory).set(1)
    }

    func sessionStarted(route: String) {
        let metrics = self.metrics(route: route)
        metrics.sessions.increment()
        metrics.active.increment()
    }

    func sessionEnded(route: String, closeCode: UInt16?, closedBy: String, duration: Int64, bytesToBackend: UInt64, bytesToClient: UInt64) {
        let metrics = self.metrics(route: route)
        metrics.active.decrement()
        metrics.duration.recordNanoseconds(duration)
        metrics.bytesToBackend.increment(by: Int64(clamping: bytesToBackend))
        metrics.bytesToClient.increment(by: Int64(clamping: bytesToClient))
        let key = CloseKey(code: closeCode, closedBy: closedBy)
        let counter = self.closeCodes.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "ferry_close_codes_total",
                dimensions: [("code", closeCode.map(String.init) ?? "none"), ("closed_by", closedBy)],
                factory: self.factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    private func metrics(route: String) -> RouteMetrics {
        self.routes.withLockedValue { routes in
            if let metrics = routes[route] { return metrics }
            let label = [("route", route)]
            let metrics = RouteMetrics(
                sessions: Counter(label: "ferry_sessions_total", dimensions: label, factory: self.factory),
                active: Meter(label: "ferry_sessions_active", dimensions: label, factory: self.factory),
                duration: Timer(label: "ferry_session_duration_seconds", dimensions: label, factory: self.factory),
                bytesToBackend: Counter(label: "ferry_bytes_total", dimensions: label + [("direction", "to_backend")], factory: self.factory),
                bytesToClient: Counter(label: "ferry_bytes_total", dimensions: label + [("direction", "to_client")], factory: self.factory),
                connect: Timer(label: "ferry_backend_connect_seconds", dimensions: label, factory: self.factory)
            )
            routes[route] = metrics
            return metrics
        }
    }

    func handshakeRefused(status: UInt) {
        Counter(label: "ferry_handshakes_refused_total", dimensions: [("status", "\(status)")], factory: self.factory).increment()
    }

    func backendConnected(route: String, nanoseconds: Int64) {
        self.metrics(route: route).connect.recordNanoseconds(nanoseconds)
    }

    /// A TLS connection that chose `h2` opened its first stream (speculative connections a browser
    /// opens and never uses are not counted).
    func http2ConnectionOpened() {
        Counter(label: "ferry_http2_connections_total", factory: self.factory).increment()
    }

    /// A session opened as a stream of an HTTP/2 connection (also counted in `ferry_sessions_total`).
    func http2SessionStarted() {
        Counter(label: "ferry_http2_sessions_total", factory: self.factory).increment()
    }

    func tlsHandshakeFailed() {
        Counter(label: "ferry_tls_handshake_failures_total", factory: self.factory).increment()
    }

    /// A connect to one of a pool's targets failed; the target backs off.
    func poolTargetFailed(route: String, target: String) {
        Counter(label: "ferry_pool_target_failures_total", dimensions: [("route", route), ("target", target)], factory: self.factory).increment()
    }

    /// A session of a pool's route started on `target` (`delta` 1) or ended (-1).
    func poolTargetSessions(route: String, target: String, delta: Double) {
        let meter = Meter(label: "ferry_pool_target_sessions_active", dimensions: [("route", route), ("target", target)], factory: self.factory)
        if delta > 0 { meter.increment(by: delta) } else { meter.decrement(by: -delta) }
    }

    /// A configuration reload: `applied` (something changed live), `unchanged`, or `failed` (the file
    /// was broken; the last good configuration stays).
    public func configurationReloaded(result: String) {
        Counter(label: "ferry_config_reloads_total", dimensions: [("result", result)], factory: self.factory).increment()
    }

    func setDraining(_ draining: Bool) {
        Meter(label: "ferry_draining", factory: self.factory).set(draining ? 1 : 0)
    }

    /// The Prometheus text exposition of everything counted so far.
    public func exposition() -> String {
        self.registry.emitToString()
    }
}
