import Foundation
import NIOCore

/// The HTTP/1.1 request that asks the relay to upgrade to WebSocket (RFC 6455 §4.1), written as bytes
/// in one go: the request is a fixed shape, and writing it directly keeps the HTTP codec out of a
/// pipeline that carries frames right after the 101. Holds what the response is checked against:
/// the key's expected `Sec-WebSocket-Accept` and the subprotocols offered.
public struct ClientUpgradeRequest: Sendable {
    /// The subprotocol offered with every request: Ferry's relay and websockify answer with it.
    public static let binarySubprotocol = "binary"

    public let url: WebSocketURL
    public let options: UpgradeRequestOptions
    /// `Sec-WebSocket-Key`: 16 random bytes, base64.
    public let key: String

    public init(url: WebSocketURL, options: UpgradeRequestOptions, key: String = ClientUpgradeRequest.randomKey()) {
        self.url = url
        self.options = options
        self.key = key
    }

    public static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    public var expectedAccept: String { WebSocketAccept.value(forKey: self.key) }

    /// What `Sec-WebSocket-Protocol` offers; the token is one of them with `--token-in subprotocol`.
    public var offeredSubprotocols: [String] {
        var offers = [Self.binarySubprotocol]
        if let token = self.options.token, self.options.tokenCarrier == .subprotocol {
            offers.append(PresentedToken.subprotocolPrefix + token)
        }
        return offers
    }

    /// The request target: the URL's path and query, with `token=` added for `--token-in query`.
    public var target: String {
        var query = self.url.query
        if let token = self.options.token, self.options.tokenCarrier == .query {
            let parameter = "token=" + Self.percentEncoded(token)
            query = query.map { $0.isEmpty ? parameter : "\($0)&\(parameter)" } ?? parameter
        }
        return query.map { "\(self.url.path)?\($0)" } ?? self.url.path
    }

    public func write(into buffer: inout ByteBuffer) {
        buffer.writeString("GET \(self.target) HTTP/1.1\r\n")
        buffer.writeString("Host: \(self.url.hostHeader)\r\n")
        buffer.writeString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
        buffer.writeString("Sec-WebSocket-Key: \(self.key)\r\nSec-WebSocket-Version: 13\r\n")
        buffer.writeString("Sec-WebSocket-Protocol: \(self.offeredSubprotocols.joined(separator: ", "))\r\n")
        if let origin = self.options.origin {
            buffer.writeString("Origin: \(origin)\r\n")
        }
        if let credentials = self.options.basicAuth {
            let encoded = Data("\(credentials.name):\(credentials.value)".utf8).base64EncodedString()
            buffer.writeString("Authorization: Basic \(encoded)\r\n")
        }
        if let token = self.options.token {
            switch self.options.tokenCarrier {
            case .header: buffer.writeString("Authorization: Bearer \(token)\r\n")
            case .cookie: buffer.writeString("Cookie: token=\(token)\r\n")
            case .subprotocol, .query: break
            }
        }
        for header in self.options.headers {
            buffer.writeString("\(header.name): \(header.value)\r\n")
        }
        buffer.writeString("\r\n")
    }

    /// RFC 3986 unreserved characters stay; every other byte becomes `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += byte < 16 ? "%0\(hex)" : "%\(hex)"
            }
        }
        return result
    }
}
