import Crypto
import Dispatch
@testable import FerryCore
import Foundation

/// `jwt`: ``JWTVerifier/verify(_:now:)`` with a fixed 32-byte HS256 secret (written to a temporary file
/// at start-up and read by the verifier's own loader), at a fixed `now`.
///
/// Input: byte 0 modulo 3 picks how the rest becomes a token:
/// - 0: the rest is the token text;
/// - 1: the rest is split at the first two NUL bytes into header JSON, payload JSON and signature, each
///   base64url-encoded and joined with dots (reaches the header parsing);
/// - 2: header and payload as in 1, signed with the secret (reaches the claims: `exp`, `nbf`, `port` …).
///
/// Checked: a token that verifies carries an HS256 header and the HMAC of its first two parts under the
/// secret (so `alg: none` or a forged signature never passes), and is not expired at `now`.
enum JWTTarget {
    static let secret = Array("ferry-fuzz-hs256-secret-32-bytes".utf8)
    /// 2027-01-15: fixed, so a run does not depend on the clock.
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let leeway: Duration = .seconds(30)

    static let verifier: JWTVerifier = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-fuzz-jwt-\(getpid()).key").path
        guard FileManager.default.createFile(atPath: path, contents: Data(Self.secret)) else {
            fatalError("FerryFuzz: cannot write \(path)")
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = waitFor { () async -> Result<JWTVerifier, ConfigurationError> in
            do throws(ConfigurationError) {
                return .success(try await JWTVerifier(keyPath: path, issuer: nil, audience: nil, leeway: Self.leeway))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let verifier): return verifier
        case .failure(let error): fatalError("FerryFuzz: the JWT verifier does not load the fixed secret: \(error)")
        }
    }()

    static func setUp() {
        _ = Self.verifier
    }

    static func run(_ input: [UInt8]) {
        guard let mode = input.first.map({ $0 % 3 }) else { return }
        let rest = input.dropFirst()
        let token: String
        if mode == 0 {
            token = String(decoding: rest, as: UTF8.self)
        } else {
            let parts = rest.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            let signingInput = base64url(parts[0]) + "." + base64url(parts.count > 1 ? parts[1] : [])
            let signature: [UInt8] = mode == 2 ? Self.hmac(signingInput) : Array(parts.count > 2 ? parts[2] : [])
            token = signingInput + "." + base64url(signature)
        }

        let verifier = Self.verifier
        let now = Self.now
        let result = waitFor { () async -> Result<JWTVerifier.Claims, JWTVerifier.Failure> in
            do throws(JWTVerifier.Failure) {
                return .success(try await verifier.verify(token, now: now))
            } catch {
                return .failure(error)
            }
        }
        trace("jwt: \(token.debugDescription) -> \(result)")
        guard case .success(let claims) = result else { return }

        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        require(parts.count == 3, "a token with \(parts.count) parts verified")
        // Read as a JSON decoder reads it (jwt-kit's way): it skips what it does not decode, invalid UTF-8 included.
        let algorithm = Base64URL.decode(parts[0]).flatMap { try? JSONDecoder().decode(Header.self, from: Data($0)).alg }
        require(algorithm == "HS256", "a token verified whose header's alg is \(String(describing: algorithm))")
        require(Base64URL.decode(parts[2]) == Self.hmac(String(parts[0]) + "." + String(parts[1])), "a token verified without the secret's signature")
        if let exp = claims.exp {
            require(exp.value.addingTimeInterval(30) >= now, "an expired token verified (exp \(exp.value))")
        }
    }

    struct Header: Decodable {
        var alg: String
    }

    static func hmac(_ text: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: Self.secret)))
    }
}

/// Base64url without padding (RFC 7515).
func base64url(_ bytes: some Collection<UInt8>) -> String {
    var text = Data(bytes).base64EncodedString()
    text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    while text.hasSuffix("=") { text.removeLast() }
    return text
}

/// Runs async code to completion from the fuzzer's synchronous callback.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Carries a task's result to the thread that waits for it (the semaphore orders the accesses).
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
