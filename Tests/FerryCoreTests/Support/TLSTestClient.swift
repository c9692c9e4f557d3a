// A test client that speaks TLS under the WebSocket test client, and a TLS echo backend.

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A TLS handshake the client could not complete (or that did not finish in time).
struct TLSHandshakeFailed: Error, CustomStringConvertible {
    var reason: String
    var description: String { "TLS handshake failed: \(self.reason)" }
}

/// Errors the client's TLS layer reported on one connection, for post-handshake alerts (TLS 1.3
/// servers refuse a client certificate after the client already considers the handshake done).
final class TLSErrorLog: Sendable {
    private let box = NIOLockedValueBox<[String]>([])
    func append(_ error: String) { self.box.withLockedValue { $0.append(error) } }
    var all: [String] { self.box.withLockedValue { $0 } }
}

/// A TLS connection made by the test, with the integration tests' WebSocket client on top of it.
struct TLSClientSession: Sendable {
    let client: WSTestClient
    /// The certificate the server presented.
    let peerCertificate: NIOSSLCertificate?
    let tlsVersion: TLSVersion?
    let errors: TLSErrorLog

    var peerSerial: [UInt8]? { self.peerCertificate?.serialNumber }

    /// DNS names in the server certificate's subject alternative names.
    var peerDNSNames: [String] {
        guard let certificate = self.peerCertificate else { return [] }
        return certificate._subjectAlternativeNames().filter { $0.nameType == .dnsName }.map { String(decoding: $0.contents, as: UTF8.self) }
    }

    func shutdown() async { await self.client.shutdown() }
}

/// What became of an attempt to open a WebSocket over TLS.
enum TLSUpgradeAttempt: Sendable, CustomStringConvertible {
    case handshakeFailed(String)
    case response(HTTPTestResponse)
    /// The handshake seemed to succeed but the server closed before answering (a TLS 1.3 alert
    /// after the client's Finished): the errors the client's TLS layer saw, and what the client saw.
    case closedWithoutResponse(tlsErrors: [String], error: String)

    var status: Int? {
        if case .response(let response) = self { return response.status }
        return nil
    }

    /// True if TLS refused the connection, during or right after the handshake.
    var failedInTLS: Bool {
        switch self {
        case .handshakeFailed: return true
        case .closedWithoutResponse(let tlsErrors, _): return !tlsErrors.isEmpty
        case .response: return false
        }
    }

    var description: String {
        switch self {
        case .handshakeFailed(let reason): return "handshake failed: \(reason)"
        case .response(let response): return "response \(response)"
        case .closedWithoutResponse(let tlsErrors, let error): return "closed without a response (\(error)); TLS errors \(tlsErrors)"
        }
    }
}

enum TLSClient {
    /// A client configuration trusting `caPath` (only), optionally presenting `certificate`.
    static func configuration(
        trusting caPath: String,
        certificate: TestCertificatePair? = nil,
        verification: CertificateVerification = .fullVerification,
        maximumVersion: TLSVersion? = nil
    ) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
        configuration.certificateVerification = verification
        configuration.maximumTLSVersion = maximumVersion
        if let certificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))
        }
        return configuration
    }

    /// Opens a TCP connection and completes a TLS handshake on it; throws ``TLSHandshakeFailed`` if
    /// the handshake fails or does not finish within `timeout`.
    static func connect(
        to address: SocketAddress,
        configuration: TLSConfiguration,
        serverHostname: String?,
        timeout: Duration = .seconds(5)
    ) async throws -> TLSClientSession {
        let context = try NIOSSLContext(configuration: configuration)
        let client = try await WSTestClient.open(to: address)
        let channel = client.channel
        let errors = TLSErrorLog()
        let outcome = HandshakeOutcome(promise: channel.eventLoop.makePromise())
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            outcome.fail(TLSHandshakeFailed(reason: "no result within \(timeout)"))
        }
        defer { timer.cancel() }
        do {
            try await channel.eventLoop.submit {
                // Added in front of the WebSocket client, which has sent nothing yet: the watcher
                // first, then the TLS handler before it, which starts the handshake at once.
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(TLSHandshakeWatcher(outcome: outcome, errors: errors), position: .first)
                try sync.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverHostname), position: .first)
            }.get()
            try await outcome.future.get()
            let (peer, version) = try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
                return (handler.peerCertificate, handler.tlsVersion)
            }.get()
            return TLSClientSession(client: client, peerCertificate: peer, tlsVersion: version, errors: errors)
        } catch let error as TLSHandshakeFailed {
            await client.shutdown()
            throw error
        } catch {
            await client.shutdown()
            throw TLSHandshakeFailed(reason: "\(error)")
        }
    }

    /// Connects, handshakes, sends a WebSocket upgrade request and reads the answer, whatever it is.
    /// On a response, the session is returned open (the caller closes it); otherwise it is closed.
    static func attemptUpgrade(
        _ relay: RunningRelay,
        configuration: TLSConfiguration,
        serverHostname: String? = "localhost",
        path: String = "/",
        headers: [(String, String)] = []
    ) async throws -> (TLSUpgradeAttempt, TLSClientSession?) {
        try await Self.attemptUpgrade(relay.address, configuration: configuration, serverHostname: serverHostname, path: path, headers: headers)
    }

    /// The same, to any address (a relay started as a separate process); `Host` is `localhost:PORT`.
    static func attemptUpgrade(
        _ address: SocketAddress,
        configuration: TLSConfiguration,
        serverHostname: String? = "localhost",
        path: String = "/",
        headers: [(String, String)] = [],
        responseTimeout: Duration = .seconds(5)
    ) async throws -> (TLSUpgradeAttempt, TLSClientSession?) {
        let session: TLSClientSession
        do {
            session = try await Self.connect(to: address, configuration: configuration, serverHostname: serverHostname)
        } catch let error as TLSHandshakeFailed {
            return (.handshakeFailed(error.reason), nil)
        }
        do {
            try await session.client.sendHandshake(path: path, host: "localhost:\(address.port ?? 0)", headers: headers)
            let response = try await session.client.readResponse(timeout: responseTimeout)
            return (.response(response), session)
        } catch let error as IntegrationTimeout {
            await session.shutdown()
            throw error
        } catch {
            // The server hung up: writing the request or reading the answer failed.
            await session.shutdown()
            return (.closedWithoutResponse(tlsErrors: session.errors.all, error: "\(error)"), nil)
        }
    }

    /// Like ``attemptUpgrade(_:configuration:serverHostname:path:headers:)`` but insists on a 101.
    static func upgrade(
        _ relay: RunningRelay,
        configuration: TLSConfiguration,
        serverHostname: String? = "localhost",
        path: String = "/",
        headers: [(String, String)] = []
    ) async throws -> TLSClientSession {
        let (attempt, session) = try await Self.attemptUpgrade(relay, configuration: configuration, serverHostname: serverHostname, path: path, headers: headers)
        guard let session, case .response(let response) = attempt, response.status == 101 else {
            await session?.shutdown()
            throw TLSUpgradeRefused(attempt: attempt)
        }
        try session.client.checkUpgraded()
        return session
    }

    /// The serial number of the certificate a server presents to a client that checks only the CA.
    static func servedSerial(at address: SocketAddress, caPath: String, serverHostname: String? = "localhost") async throws -> [UInt8]? {
        let session = try await Self.connect(
            to: address,
            configuration: try Self.configuration(trusting: caPath, verification: .noHostnameVerification),
            serverHostname: serverHostname
        )
        await session.shutdown()
        return session.peerSerial
    }
}

struct TLSUpgradeRefused: Error, CustomStringConvertible {
    var attempt: TLSUpgradeAttempt
    var description: String { "expected a 101 over TLS, got \(self.attempt)" }
}

/// Completes the handshake promise once, from the watcher or from the timeout.
private final class HandshakeOutcome: Sendable {
    private let promise: EventLoopPromise<Void>
    private let completed = NIOLockedValueBox(false)

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    var future: EventLoopFuture<Void> { self.promise.futureResult }

    private func claim() -> Bool {
        self.completed.withLockedValue { done in
            defer { done = true }
            return !done
        }
    }

    func succeed() {
        if self.claim() { self.promise.succeed() }
    }

    func fail(_ error: Error) {
        if self.claim() { self.promise.fail(error) }
    }
}

/// Sits after the client's TLS handler: reports the handshake's end and every TLS error.
private final class TLSHandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let outcome: HandshakeOutcome
    private let errors: TLSErrorLog

    init(outcome: HandshakeOutcome, errors: TLSErrorLog) {
        self.outcome = outcome
        self.errors = errors
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.outcome.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.errors.append("\(error)")
        self.outcome.fail(TLSHandshakeFailed(reason: "\(error)"))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let seen = self.errors.all
        self.outcome.fail(TLSHandshakeFailed(reason: seen.isEmpty ? "the server closed the connection" : seen.joined(separator: "; ")))
        context.fireChannelInactive()
    }
}

// MARK: - Echo checks

enum TLSEcho {
    /// Sends `text` as a binary message and expects the same bytes back.
    static func roundTrip(_ client: WSTestClient, _ text: String) async throws -> String? {
        try await client.send(binary: Array(text.utf8))
        let echoed = try await client.receiveBytes(count: text.utf8.count, timeout: .seconds(5))
        return echoed.getString(at: echoed.readerIndex, length: echoed.readableBytes)
    }
}

// MARK: - TLS echo backend

/// A TCP server that speaks TLS with the given certificate and echoes what it reads.
final class TLSEchoBackend: Sendable {
    let channel: Channel
    private let handshakes = NIOLockedValueBox(0)

    private init(channel: Channel) {
        self.channel = channel
    }

    var port: Int { self.channel.localAddress!.port! }

    static func start(_ pair: TestCertificatePair) async throws -> TLSEchoBackend {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(pair.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: pair.keyPath, format: .pem))
        )
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TLSEchoBackend(channel: channel)
    }

    func close() async {
        try? await self.channel.close()
    }
}
