// Plumbing for the TLS tests: a relay with TLS options. The TLS client, the TLS echo backend and the
// test certificates are in Support/ (the websockify suite uses them too).

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The parent of every TLS suite: `swift test --filter TLS` selects them all, one at a time.
@Suite("TLS", .serialized, .enabled(if: OutsideTools.have("openssl"), OutsideTools.installHint("openssl")))
struct TLSTests {}

// MARK: - Relay

enum TLSRelay {
    /// Starts a relay with listener TLS and backend TLS options, runs `body`, and always stops it,
    /// waiting up to `stopTimeout` for sessions to end.
    static func with<T: Sendable>(
        routes: [Route],
        tls: ListenerTLSOptions?,
        backendTLS: BackendTLSOptions = BackendTLSOptions(),
        limits: Limits = Relay.testLimits(),
        stopTimeout: TimeAmount = .seconds(3),
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: routes,
            limits: limits,
            tls: tls,
            backendTLS: backendTLS
        )
        let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: Relay.logger)
        return try await Relay.serving(server, stopTimeout: stopTimeout, body)
    }

    /// Listener options serving `pairs` (the first one by default).
    static func options(_ pairs: [TestCertificatePair], _ adjust: (inout ListenerTLSOptions) -> Void = { _ in }) -> ListenerTLSOptions {
        var options = ListenerTLSOptions(pairs: pairs.map(\.listenerPair))
        adjust(&options)
        return options
    }
}

extension RunningRelay {
    /// The Host header a browser would send for `wss://localhost:PORT`.
    var localhostHeader: String { "localhost:\(self.address.port ?? 0)" }
}
