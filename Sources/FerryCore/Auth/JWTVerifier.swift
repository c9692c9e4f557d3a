import Foundation
import JWTKit

/// Checks JWTs with jwt-kit: the signature against `--jwt-key` (an HMAC secret for HS256/384/512, a PEM
/// public key for RS256, ES256 or EdDSA, or a JWKS file whose keys are picked by `kid`), then `exp` and
/// `nbf` with a small leeway, and `iss`/`aud` when configured. `alg: none` is never accepted: no
/// signer for it is registered.
public struct JWTVerifier: Sendable {
    /// The claims Ferry reads; websockify's JWT plugin names the target `host` and `port`.
    public struct Claims: JWTPayload, Equatable {
        public var exp: ExpirationClaim?
        public var nbf: NotBeforeClaim?
        public var iss: IssuerClaim?
        public var aud: AudienceClaim?
        /// The route path this token is for (`/vnc`).
        public var route: String?
        public var host: String?
        /// A number, or a string of digits (websockify's JWTTokenApi accepts both).
        public var port: Port?
        /// A Unix socket path, instead of host and port.
        public var unix: String?

        public func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A `port` claim written as `5900` or `"5900"`.
    public struct Port: Codable, Sendable, Equatable {
        public var value: Int

        public init(_ value: Int) { self.value = value }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                self.value = number
            } else if let number = Int(try container.decode(String.self)) {
                self.value = number
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "port is not a number")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(self.value)
        }
    }

    public enum Failure: Error, Equatable {
        case invalid
        case expired
        case notYetValid
        case wrongIssuer
        case wrongAudience
    }

    private let keys: JWTKeyCollection
    public let issuer: String?
    public let audience: String?
    public let leeway: Duration

    /// Loads the key file; a file that is none of the supported forms is a start-up error. A PEM
    /// private key is accepted (websockify's JWTTokenApi takes one) and only its public half is used.
    public init(
        keyPath: String,
        issuer: String?,
        audience: String?,
        leeway: Duration,
        secretEncoding: AuthOptions.SecretEncoding = .raw
    ) async throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: keyPath) else {
            throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self)
        let keys = JWTKeyCollection()
        do {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{") {
                try await keys.add(jwksJSON: text)
            } else if text.contains("-----BEGIN PUBLIC KEY-----") {
                if let key = try? ES256PublicKey(pem: text) {
                    await keys.add(ecdsa: key)
                } else if let key = try? EdDSA.PublicKey(pem: text) {
                    await keys.add(eddsa: key)
                } else {
                    await keys.add(rsa: try Insecure.RSA.PublicKey(pem: text), digestAlgorithm: .sha256)
                }
            } else if text.contains("PRIVATE KEY-----") {
                if let key = try? ES256PrivateKey(pem: text) {
                    await keys.add(ecdsa: key.publicKey)
                } else if let key = try? EdDSA.PrivateKey(pem: text) {
                    await keys.add(eddsa: key.publicKey)
                } else {
                    await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: text).publicKey, digestAlgorithm: .sha256)
                }
            } else if text.contains("-----BEGIN") {
                throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "not a key", expected: "a PEM public or private key, a JWKS file or an HMAC secret")
            } else {
                // A trailing newline (LF or CRLF) from an editor or `echo` is not part of the secret.
                var trimmed = Substring(text)
                while let last = trimmed.last, last.isNewline || last == " " { trimmed = trimmed.dropLast() }
                let secret: [UInt8]
                switch secretEncoding {
                case .raw:
                    secret = Array(trimmed.utf8)
                case .base64url:
                    guard let decoded = Base64URL.decode(trimmed) else {
                        throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "not base64url text", expected: "the secret as a JWK 'k' value (base64url), as websockify's JWTTokenApi reads it")
                    }
                    secret = decoded
                }
                // RFC 7518 §3.2: a key at least as long as the hash. HS384 and HS512 need longer secrets.
                let length = secret.count
                guard length >= 32 else {
                    throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "HMAC secret shorter than 32 bytes", expected: "a random secret, e.g. openssl rand -hex 32 > FILE")
                }
                await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "hs256")
                if length >= 48 { await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha384, kid: "hs384") }
                if length >= 64 { await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha512, kid: "hs512") }
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "not a usable key (\(error))", expected: "an HMAC secret, a PEM public key (RSA, EC P-256, Ed25519) or a JWKS file")
        }
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
    }

    /// The verified claims, or why the token is refused.
    public func verify(_ token: String, now: Date = Date()) async throws(Failure) -> Claims {
        let claims: Claims
        do {
            claims = try await self.keys.verify(token, as: Claims.self, iteratingKeys: true)
        } catch {
            throw .invalid
        }
        let leeway = Double(self.leeway.components.seconds) + Double(self.leeway.components.attoseconds) / 1e18
        if let exp = claims.exp, exp.value.addingTimeInterval(leeway) < now { throw .expired }
        if let nbf = claims.nbf, nbf.value.addingTimeInterval(-leeway) > now { throw .notYetValid }
        if let issuer = self.issuer, claims.iss?.value != issuer { throw .wrongIssuer }
        if let audience = self.audience, !(claims.aud?.value.contains(audience) ?? false) { throw .wrongAudience }
        return claims
    }
}

/// Base64url (RFC 4648 §5) as JWK `k` values are written; padding optional, whitespace ignored.
enum Base64URL {
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var standard = String(text.filter { !$0.isWhitespace }.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        while standard.hasSuffix("=") { standard.removeLast() }
        guard !standard.isEmpty, standard.count % 4 != 1 else { return nil }
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
