import NIOCore

/// What the client side of a session receives, after framing: the payload stream and control messages.
public enum WebSocketInbound {
    /// Unmasked payload bytes of binary and text messages, in order, message boundaries dropped.
    case data(ByteBuffer)
    case ping(ByteBuffer)
    case pong(ByteBuffer)
    /// A valid close frame; `code` is nil when the frame carried no status code (1005).
    case close(code: UInt16?, reason: String)
}

/// A close frame's payload, checked by RFC 6455 §5.5.1 and §7.4.
public enum WebSocketClosePayload {
    /// Parses and validates a received close payload.
    public static func parse(_ payload: ByteBuffer) throws(WebSocketProtocolError) -> (code: UInt16?, reason: String) {
        var payload = payload
        if payload.readableBytes == 0 { return (nil, "") }
        guard let code = payload.readInteger(as: UInt16.self) else {
            throw .protocolViolation("close frame with a 1-byte payload")
        }
        guard Self.isValidReceivedCode(code) else { throw .protocolViolation("invalid close code \(code)") }
        var validator = UTF8StreamValidator()
        let valid = payload.withUnsafeReadableBytes { validator.validate($0) } && validator.isAtBoundary
        guard valid else { throw .protocolViolation("close reason is not valid UTF-8") }
        return (code, payload.readString(length: payload.readableBytes) ?? "")
    }

    /// Codes a peer may send: the defined 1000–1003 and 1007–1014, and the registered/private 3000–4999.
    public static func isValidReceivedCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// Builds a close payload; the reason is cut to fit a 125-byte control frame on a UTF-8 boundary.
    public static func make(code: UInt16, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var utf8 = Array(reason.utf8.prefix(123))
        while let last = utf8.last, last & 0xC0 == 0x80 || last >= 0xC0 {
            // Drop a cut sequence: trailing continuation bytes and the lead byte they belong to.
            if String(validating: utf8, as: UTF8.self) != nil { break }
            utf8.removeLast()
        }
        var buffer = allocator.buffer(capacity: 2 + utf8.count)
        buffer.writeInteger(code)
        buffer.writeBytes(utf8)
        return buffer
    }
}
