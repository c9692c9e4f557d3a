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
        public var port: Int?
        /// A Unix socket path, instead of host and port.
        public var unix: String?

        public func verify(using algorithm: some JWTAlgorithm) async throws {}
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

    /// Loads the key file; a file that is none of the supported forms is a start-up error.
    public init(keyPath: String, issuer: String?, audience: String?, leeway: Duration) async throws(ConfigurationError) {
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
            } else if text.contains("-----BEGIN") {
                throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "only public keys are accepted", expected: "a -----BEGIN PUBLIC KEY----- file, a JWKS file or an HMAC secret")
            } else {
                // A trailing newline (LF or CRLF) from an editor or `echo` is not part of the secret.
                var secret = Substring(text)
                while let last = secret.last, last.isNewline { secret = secret.dropLast() }
                // RFC 7518 §3.2: a key at least as long as the hash. HS384 and HS512 need longer secrets.
                let length = secret.utf8.count
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
