// Plumbing for the authentication tests: a relay started with AuthOptions, temporary token and key
// files, JWTs made with jwt-kit, and handshakes that carry a token one way or another. The logger
// that keeps what it writes (`AuthLogCapture`) is in Support/LogCapture.swift.

import Crypto
import Foundation
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

/// The parent of every authentication suite: `swift test --filter Auth` selects them all, one at a time.
@Suite("Auth", .serialized)
struct AuthTests {}

// MARK: - Relay

enum AuthRelay {
    /// Auth options for tests: a failure limit high enough that a test's deliberate failures never
    /// trip it (the rate-limit test sets its own).
    static func options(_ adjust: (inout AuthOptions) -> Void = { _ in }) -> AuthOptions {
        var options = AuthOptions()
        options.failureLimit = 1_000
        adjust(&options)
        return options
    }

    /// Starts a relay with `auth` on 127.0.0.1 (ephemeral port), runs `body`, and always stops it.
    static func with<T: Sendable>(
        routes: [Route],
        auth: AuthOptions,
        logger: Logger = Relay.logger,
        limits: Limits = Relay.testLimits(),
        tls: ListenerTLSOptions? = nil,
        _ body: (RunningRelay) async throws -> T
    ) async throws -> T {
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: routes,
            limits: limits,
            tls: tls,
            auth: auth
        )
        let server = try FerryServer(configuration: configuration, group: IntegrationLoops.group, logger: logger)
        return try await Relay.serving(server, body)
    }
}

extension RunningRelay {
    /// The token table the relay reads (`--token-file`), if it has one.
    var tokenFile: TokenFileSource? { self.server.environment.policy.authorizer?.tokenTables.first }
}

// MARK: - Files

/// A temporary folder, removed by ``with(_:)`` whatever the body does.
struct AuthTempFolder: Sendable {
    let path: String

    static func with<T>(_ body: (AuthTempFolder) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-auth-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(AuthTempFolder(path: path))
    }

    /// Writes (replaces) a file in the folder; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = self.path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func remove(_ name: String) throws {
        try FileManager.default.removeItem(atPath: self.path + "/" + name)
    }

    func subfolder(_ name: String) throws -> String {
        let folder = self.path + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }
}

/// A distinctive random token, easy to search for in logs and responses.
func authRandomToken(_ label: String) -> String {
    "\(label)-" + (0..<12).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
}

// MARK: - JWTs

/// The claims the tests put in tokens; every field optional so each test sets only what it means.
struct AuthTestClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var route: String?
    var host: String?
    var port: Int?
    var unix: String?

    init(
        exp: Date? = nil,
        nbf: Date? = nil,
        iss: String? = nil,
        aud: [String]? = nil,
        route: String? = nil,
        host: String? = nil,
        port: Int? = nil,
        unix: String? = nil
    ) {
        self.exp = exp.map { ExpirationClaim(value: $0) }
        self.nbf = nbf.map { NotBeforeClaim(value: $0) }
        self.iss = iss.map { IssuerClaim(value: $0) }
        self.aud = aud.map { AudienceClaim(value: $0) }
        self.route = route
        self.host = host
        self.port = port
        self.unix = unix
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

enum AuthJWT {
    /// A random HMAC secret of 64 hex characters (≥ 32 bytes, as the relay insists).
    static func hmacSecret() -> String {
        (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255)
            return byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }

    static func hs256(_ claims: AuthTestClaims, secret: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    /// An HS256/384/512 token built by hand with swift-crypto (jwt-kit refuses to sign with a secret
    /// shorter than the hash, which is what a test of that refusal needs).
    static func hmac(payloadJSON: String, secret: String, bits: Int) -> String {
        let header = #"{"alg":"HS\#(bits)","typ":"JWT"}"#
        let input = base64URL(Array(header.utf8)) + "." + base64URL(Array(payloadJSON.utf8))
        let key = SymmetricKey(data: Array(secret.utf8))
        let mac: [UInt8]
        switch bits {
        case 384: mac = Array(HMAC<SHA384>.authenticationCode(for: Array(input.utf8), using: key))
        case 512: mac = Array(HMAC<SHA512>.authenticationCode(for: Array(input.utf8), using: key))
        default: mac = Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: key))
        }
        return input + "." + base64URL(mac)
    }

    static func es256(_ claims: AuthTestClaims, key: ES256PrivateKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    /// A token with `alg: none`, built by hand (jwt-kit will not make one): header, payload, `signature`.
    static func unsigned(payloadJSON: String, signature: String = "") -> String {
        let header = #"{"alg":"none","typ":"JWT"}"#
        return base64URL(Array(header.utf8)) + "." + base64URL(Array(payloadJSON.utf8)) + "." + signature
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A JWKS document with one P-256 public key under `kid`.
    static func jwks(_ key: ES256PrivateKey, kid: String) throws -> String {
        guard let parameters = key.parameters else { throw AuthTestError(what: "no EC parameters") }
        return """
            {"keys":[{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"\(kid)","x":"\(parameters.x)","y":"\(parameters.y)"}]}
            """
    }
}

struct AuthTestError: Error {
    var what: String
}

// MARK: - Handshakes

/// Where a handshake carries its token.
enum TokenCarrier: Sendable, CustomStringConvertible {
    case subprotocol
    case cookie(String)
    case header
    case query

    var description: String {
        switch self {
        case .subprotocol: return "subprotocol"
        case .cookie(let name): return "cookie \(name)"
        case .header: return "Authorization header"
        case .query: return "query"
        }
    }
}

enum AuthClient {
    /// Sends an upgrade request carrying `token` (none if nil) and reads the response.
    static func handshake(
        _ relay: RunningRelay,
        path: String,
        token: String?,
        via carrier: TokenCarrier = .header
    ) async throws -> WSTestClient {
        var path = path
        var headers: [(String, String)] = []
        var protocols: [String]? = nil
        if let token {
            switch carrier {
            case .subprotocol:
                protocols = ["binary", PresentedToken.subprotocolPrefix + token]
            case .cookie(let name):
                headers.append(("Cookie", "theme=dark; \(name)=\(token); lang=en"))
            case .header:
                headers.append(("Authorization", "Bearer \(token)"))
            case .query:
                let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
                path += (path.contains("?") ? "&" : "?") + "token=" + encoded
            }
        }
        return try await WSTestClient.connect(to: relay, path: path, headers: headers, protocols: protocols)
    }

    /// A handshake expected to be refused: the response (the connection is closed afterwards). Checks
    /// that neither the status line, the headers nor the body repeat the token.
    static func refusal(
        _ relay: RunningRelay,
        path: String,
        token: String?,
        via carrier: TokenCarrier = .header,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> HTTPTestResponse {
        let client = try await self.handshake(relay, path: path, token: token, via: carrier)
        let response = client.response
        await client.shutdown()
        if let token {
            #expect(!response.description.contains(token), "the response repeats the token: \(response)", sourceLocation: sourceLocation)
        }
        return response
    }

    /// A handshake expected to succeed: the upgraded client. The 101 must not echo the token either.
    static func session(
        _ relay: RunningRelay,
        path: String,
        token: String,
        via carrier: TokenCarrier = .header,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> WSTestClient {
        let client = try await self.handshake(relay, path: path, token: token, via: carrier)
        do {
            try client.checkUpgraded()
        } catch {
            await client.shutdown()
            throw error
        }
        #expect(!client.response.description.contains(token), "the 101 repeats the token", sourceLocation: sourceLocation)
        if case .subprotocol = carrier {
            #expect(client.response.values("Sec-WebSocket-Protocol") == ["binary"], sourceLocation: sourceLocation)
        }
        return client
    }

    /// Sends `message` and expects the echo backend to send it back through the relay.
    static func expectEcho(_ client: WSTestClient, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await client.send(binary: Array(message.utf8))
        let echoed = try await client.receiveBytes(count: message.utf8.count, timeout: .seconds(5))
        #expect(String(buffer: echoed) == message, sourceLocation: sourceLocation)
    }

    /// A session that works end to end: upgraded, echoes, closes cleanly.
    static func expectWorks(
        _ relay: RunningRelay,
        path: String,
        token: String,
        via carrier: TokenCarrier = .header,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let client = try await self.session(relay, path: path, token: token, via: carrier, sourceLocation: sourceLocation)
        do {
            try await self.expectEcho(client, "hello via \(carrier)", sourceLocation: sourceLocation)
            _ = try? await client.close(timeout: .seconds(3))
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

// MARK: - Extra echo listener

/// An echo server on a given address and port (the test backends bind port 0 only): used to stand in
/// for a backend on `::1` at the same port as one on 127.0.0.1, so `localhost` works either way.
enum AuthExtraEchoListener {
    static func bind(host: String, port: Int) async throws -> Channel {
        try await ServerBootstrap(group: IntegrationLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
