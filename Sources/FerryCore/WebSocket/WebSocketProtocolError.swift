import NIOWebSocket

/// A violation of RFC 6455 (or of a configured limit) by the peer, carrying the close code to answer with.
public struct WebSocketProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The close code sent to the peer: 1002, 1007 or 1009.
    public var closeCode: UInt16
    /// A short reason for the close frame and the session log; never contains payload bytes.
    public var reason: String

    public init(closeCode: UInt16, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    public var description: String { "\(self.closeCode) \(self.reason)" }

    static func protocolViolation(_ reason: String) -> Self { .init(closeCode: 1002, reason: reason) }
    static func invalidUTF8(_ reason: String) -> Self { .init(closeCode: 1007, reason: reason) }
    static func tooLarge(_ reason: String) -> Self { .init(closeCode: 1009, reason: reason) }
}
