import Crypto
import Foundation
import Testing

@testable import FerryCore

/// A JWT is checked against a key only when its header names that key's algorithm (RFC 8725 §3.1),
/// and a `crit` header is refused (RFC 7515 §4.1.11). Tokens here carry a valid HS256 signature
/// under headers that lie about it.
@Suite("JWT header (alg, crit)")
struct JWTHeaderTests {
    static let secret = String(repeating: "k", count: 32)

    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// `header.payload` signed with HMAC-SHA256 under the test secret, whatever the header says.
    static func token(header: String, payload: String = #"{"route":"/vnc"}"#) -> String {
        let signingInput = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(Self.secret.utf8)))
        return signingInput + "." + Self.base64URL(Array(mac))
    }

    static func verifier() async throws -> JWTVerifier {
        let path = NSTemporaryDirectory() + "ferry-jwt-header-\(UInt64.random(in: 0...UInt64.max))"
        try Self.secret.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await JWTVerifier(keyPath: path, issuer: nil, audience: nil, leeway: .seconds(0))
    }

    @Test("an honest HS256 header is accepted")
    func honest() async throws {
        let claims = try await Self.verifier().verify(Self.token(header: #"{"alg":"HS256","typ":"JWT"}"#))
        #expect(claims.route == "/vnc")
    }

    @Test(
        "a header naming another algorithm than the key's is refused, whatever the signature",
        arguments: [
            #"{"alg":"none","typ":"JWT"}"#, #"{"alg":"ES256","typ":"JWT"}"#, #"{"alg":"RS512","typ":"JWT"}"#,
            #"{"alg":"HS384","typ":"JWT"}"#, #"{"alg":"hs256","typ":"JWT"}"#, #"{"typ":"JWT"}"#, #"{"alg":["HS256"]}"#,
        ]
    )
    func wrongAlgorithm(header: String) async throws {
        let verifier = try await Self.verifier()
        await #expect(throws: JWTVerifier.Failure.invalid) { try await verifier.verify(Self.token(header: header)) }
    }

    @Test("a crit header is refused: Ferry understands no extension", arguments: [#"["exp"]"#, #"["b64"]"#, "[]"])
    func critical(list: String) async throws {
        let verifier = try await Self.verifier()
        let token = Self.token(header: #"{"alg":"HS256","crit":\#(list),"exp":1}"#)
        await #expect(throws: JWTVerifier.Failure.invalid) { try await verifier.verify(token) }
    }

    @Test("the algorithms a key allows: HS256 for a 32-byte secret; a JWKS key's own alg or its family's")
    func algorithms() async throws {
        #expect(try await Self.verifier().algorithms == ["HS256"])
        #expect(JWTVerifier.algorithms(ofJWK: ["kty": "EC", "crv": "P-256", "alg": "ES256"]) == ["ES256"])
        #expect(JWTVerifier.algorithms(ofJWK: ["kty": "EC", "crv": "P-256"]) == ["ES256"])
        #expect(JWTVerifier.algorithms(ofJWK: ["kty": "oct", "alg": "none"]) == [])
        #expect(JWTVerifier.algorithms(ofJWK: ["kty": "RSA"]).allSatisfy { $0.hasPrefix("RS") || $0.hasPrefix("PS") })
    }

    @Test("header fields are read only from a compact JWS with a JSON header")
    func headerFields() {
        #expect(JWTHeaderFields(token: "a.b") == nil)
        #expect(JWTHeaderFields(token: Self.base64URL(Array("not json".utf8)) + ".b.c") == nil)
        #expect(JWTHeaderFields(token: Self.token(header: #"{"alg":"HS256"}"#))?.alg == "HS256")
    }
}
