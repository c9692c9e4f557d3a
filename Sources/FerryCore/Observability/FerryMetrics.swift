import CoreMetrics
import Prometheus

/// Ferry's metrics, in swift-metrics types backed by this server's own swift-prometheus registry (no
/// process-wide bootstrap, so tests can run several servers). Everything is counted per session or per
/// handshake, never per read: the data path pays nothing for it.
public final class FerryMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

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
        Counter(label: "ferry_sessions_total", dimensions: [("route", route)], factory: self.factory).increment()
        Meter(label: "ferry_sessions_active", dimensions: [("route", route)], factory: self.factory).increment()
    }

    func sessionEnded(route: String, closeCode: UInt16?, closedBy: String, duration: Int64, bytesToBackend: UInt64, bytesToClient: UInt64) {
        Meter(label: "ferry_sessions_active", dimensions: [("route", route)], factory: self.factory).decrement()
        Timer(label: "ferry_session_duration_seconds", dimensions: [("route", route)], factory: self.factory).recordNanoseconds(duration)
        Counter(label: "ferry_bytes_total", dimensions: [("route", route), ("direction", "to_backend")], factory: self.factory)
            .increment(by: Int64(clamping: bytesToBackend))
        Counter(label: "ferry_bytes_total", dimensions: [("route", route), ("direction", "to_client")], factory: self.factory)
            .increment(by: Int64(clamping: bytesToClient))
        Counter(
            label: "ferry_close_codes_total",
            dimensions: [("code", closeCode.map(String.init) ?? "none"), ("closed_by", closedBy)],
            factory: self.factory
        ).increment()
    }

    func handshakeRefused(status: UInt) {
        Counter(label: "ferry_handshakes_refused_total", dimensions: [("status", "\(status)")], factory: self.factory).increment()
    }

    func backendConnected(route: String, nanoseconds: Int64) {
        Timer(label: "ferry_backend_connect_seconds", dimensions: [("route", route)], factory: self.factory).recordNanoseconds(nanoseconds)
    }

    func tlsHandshakeFailed() {
        Counter(label: "ferry_tls_handshake_failures_total", factory: self.factory).increment()
    }

    func setDraining(_ draining: Bool) {
        Meter(label: "ferry_draining", factory: self.factory).set(draining ? 1 : 0)
    }

    /// The Prometheus text exposition of everything counted so far.
    public func exposition() -> String {
        self.registry.emitToString()
    }
}
