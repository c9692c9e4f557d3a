import Crypto
import Foundation

/// `Sec-WebSocket-Accept` (RFC 6455 §4.2.2): base64 of the SHA-1 of the client's key and the
/// protocol's GUID. Computed with swift-crypto rather than by instantiating NIO's upgrader to read
/// its future: SHA-1 here proves the server read the handshake, it protects nothing.
public enum WebSocketAccept {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public static func value(forKey key: some StringProtocol) -> String {
        // Hashed in two parts, from the strings' own bytes: joining key and GUID into a new string
        // and copying it into an array cost two allocations per handshake.
        var sha1 = Insecure.SHA1()
        Self.update(&sha1, with: key.utf8)
        Self.update(&sha1, with: Self.guid.utf8)
        return Data(sha1.finalize()).base64EncodedString()
    }

    private static func update(_ sha1: inout Insecure.SHA1, with bytes: some Collection<UInt8>) {
        let hashed: Void? = bytes.withContiguousStorageIfAvailable { sha1.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        if hashed == nil { sha1.update(data: Array(bytes)) }
    }
}
