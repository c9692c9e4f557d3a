import Foundation
import JWTKit

/// Checks JWTs with jwt-kit: the header's `alg` against the algorithms of `--jwt-key` (an HMAC secret
/// for HS256/384/512, a PEM public key for RS256, ES256 or EdDSA, or a JWKS file whose keys are picked
/// by `kid`), then the signature with a key of that algorithm only, then `exp` and `nbf` with a small
/// leeway, and `iss`/`aud` when configured.
///
/// jwt-kit verifies with whichever key's signature matches and does not compare the header's `alg`
/// with it, so the header is checked here first (RFC 8725 §3.1): keys are kept in one collection per
/// algorithm, and a token is verified only against the collection its `alg` names. `alg: none`, an
/// algorithm no key has, and any `crit` header (Ferry understands no JWS extension, RFC 7515
/// §4.1.11) are refused.
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

    /// The keys by the `alg` a token must name to be checked against them.
    private let keysByAlgorithm: [String: JWTKeyCollection]
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
        var keys: [String: JWTKeyCollection] = [:]
        func collection(_ algorithm: String) -> JWTKeyCollection {
            if let existing = keys[algorithm] { return existing }
            let created = JWTKeyCollection()
            keys[algorithm] = created
            return created
        }
        do {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{") {
                for (algorithm, set) in try Self.jwksByAlgorithm(text, path: keyPath) {
                    try await collection(algorithm).add(jwksJSON: set)
                }
            } else if text.contains("-----BEGIN PUBLIC KEY-----") {
                if let key = try? ES256PublicKey(pem: text) {
                    await collection("ES256").add(ecdsa: key)
                } else if let key = try? EdDSA.PublicKey(pem: text) {
                    await collection("EdDSA").add(eddsa: key)
                } else {
                    await collection("RS256").add(rsa: try Insecure.RSA.PublicKey(pem: text), digestAlgorithm: .sha256)
                }
            } else if text.contains("PRIVATE KEY-----") {
                if let key = try? ES256PrivateKey(pem: text) {
                    await collection("ES256").add(ecdsa: key.publicKey)
                } else if let key = try? EdDSA.PrivateKey(pem: text) {
                    await collection("EdDSA").add(eddsa: key.publicKey)
                } else {
                    await collection("RS256").add(rsa: try Insecure.RSA.PrivateKey(pem: text).publicKey, digestAlgorithm: .sha256)
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
                await collection("HS256").add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
                if length >= 48 { await collection("HS384").add(hmac: HMACKey(from: secret), digestAlgorithm: .sha384) }
                if length >= 64 { await collection("HS512").add(hmac: HMACKey(from: secret), digestAlgorithm: .sha512) }
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(flag: "--jwt-key", value: keyPath, problem: "not a usable key (\(error))", expected: "an HMAC secret, a PEM public key (RSA, EC P-256, Ed25519) or a JWKS file")
        }
        self.keysByAlgorithm = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
    }

    /// The algorithms a token may name.
    public var algorithms: Set<String> { Set(self.keysByAlgorithm.keys) }

    /// The verified claims, or why the token is refused.
    public func verify(_ token: String, now: Date = Date()) async throws(Failure) -> Claims {
        guard let header = JWTHeaderFields(token: token), header.crit == nil,
            let keys = self.keysByAlgorithm[header.alg]
        else { throw .invalid }
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self, iteratingKeys: true)
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

extension JWTVerifier {
    /// Splits a JWKS file into one key set per algorithm a token may name for its keys: a key's own
    /// `alg`, or for a key without one, its family's (RFC 7518 §3.1) as jwt-kit would pick it from
    /// the token's header.
    static func jwksByAlgorithm(_ text: String, path: String) throws(ConfigurationError) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let keys = object["keys"] as? [[String: Any]]
        else {
            throw ConfigurationError(flag: "--jwt-key", value: path, problem: "not a JWKS file", expected: "{\"keys\": [...]} with each key's kty, kid and alg")
        }
        var byAlgorithm: [String: [[String: Any]]] = [:]
        for key in keys {
            for algorithm in Self.algorithms(ofJWK: key) { byAlgorithm[algorithm, default: []].append(key) }
        }
        var sets: [String: String] = [:]
        for (algorithm, keys) in byAlgorithm {
            guard let data = try? JSONSerialization.data(withJSONObject: ["keys": keys]) else { continue }
            sets[algorithm] = String(decoding: data, as: UTF8.self)
        }
        return sets
    }

    static func algorithms(ofJWK key: [String: Any]) -> [String] {
        if let alg = key["alg"] as? String { return alg == "none" ? [] : [alg] }
        switch (key["kty"] as? String, key["crv"] as? String) {
        case ("RSA", _): return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
        case ("EC", "P-256"): return ["ES256"]
        case ("EC", "P-384"): return ["ES384"]
        case ("EC", "P-521"): return ["ES512"]
        case ("OKP", "Ed25519"): return ["EdDSA"]
        case ("oct", _): return ["HS256", "HS384", "HS512"]
        default: return []
        }
    }
}

/// The fields of a JWT's protected header that decide how it may be checked. Read here because
/// jwt-kit does not check them against the key (see ``JWTVerifier``).
struct JWTHeaderFields: Decodable, Equatable {
    var alg: String
    var crit: [String]?

    /// The header of a compact JWS (`header.payload.signature`); nil if it is not one.
    init?(token: some StringProtocol) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].utf8.count <= 4096, let bytes = Base64URL.decode(parts[0]),
            let header = try? JSONDecoder().decode(Self.self, from: Data(bytes))
        else { return nil }
        self = header
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
