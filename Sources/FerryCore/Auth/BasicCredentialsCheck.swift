import Crypto
import Foundation
import NIOHTTP1

/// Checks a request's `Authorization: Basic` header against the configured users.
extension BasicCredentials {
    /// Nil when the request carries valid credentials; the refusal otherwise: 401 with a challenge
    /// when there are none or they are wrong, 403 when the header is malformed (as websockify does).
    public func check(_ headers: HTTPHeaders) -> HandshakeRejection? {
        let challenge: HTTPHeaders = ["WWW-Authenticate": "Basic realm=\"\(Self.realm)\", charset=\"UTF-8\""]
        guard let header = headers["Authorization"].first(where: { $0.lowercased().hasPrefix("basic ") }) else {
            return HandshakeRejection(.unauthorized, "credentials are required", headers: challenge)
        }
        guard let decoded = Data(base64Encoded: String(header.dropFirst("basic ".count).trimmingSpaces)),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else {
            return HandshakeRejection(.forbidden, "malformed credentials")
        }
        let user = String(decoding: decoded[..<colon], as: UTF8.self)
        let password = Array(decoded[decoded.index(after: colon)...])
        let digest = Array(SHA256.hash(data: password))
        // An unknown user is compared against a digest too, so timing does not tell users apart.
        let expected = self.users[user] ?? Array(repeating: 0, count: digest.count)
        guard constantTimeEquals(expected, digest), self.users[user] != nil else {
            return HandshakeRejection(.unauthorized, "wrong credentials", headers: challenge)
        }
        return nil
    }
}
