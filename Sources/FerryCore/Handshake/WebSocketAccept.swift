import Crypto
import Foundation

/// `Sec-WebSocket-Accept` (RFC 6455 §4.2.2): base64 of the SHA-1 of the client's key and the
/// protocol's GUID. Computed with swift-crypto rather than by instantiating NIO's upgrader to read
/// its future: SHA-1 here proves the server read the handshake, it protects nothing.
public enum WebSocketAccept {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public static func value(forKey key: some StringProtocol) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + Self.guid).utf8))).base64EncodedString()
    }
}
