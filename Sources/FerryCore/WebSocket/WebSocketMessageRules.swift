/// The RFC 6455 rules that span frames: a continuation must continue something, a new message may not
/// start inside a fragmented one, text must be UTF-8 across all its fragments, and a message may not
/// outgrow `--max-message-size`. Control frames may come between fragments and do not touch this state.
public struct WebSocketMessageRules: Sendable {
    /// What the frame being read is.
    public enum FrameKind: Equatable, Sendable {
        case data
        case control(opcode: UInt8)
    }

    /// Largest message in bytes; 0 means no limit (payloads are streamed, so none is needed for memory).
    public let maxMessageSize: UInt64

    private var inMessage = false
    private var isText = false
    private var messageSize: UInt64 = 0
    private var utf8 = UTF8StreamValidator()
    private var current: FrameKind = .data
    private var currentIsFinal = false

    public init(maxMessageSize: Int) {
        self.maxMessageSize = UInt64(max(0, maxMessageSize))
    }

    /// Checks a new frame header against the message in progress and returns what the frame is.
    public mutating func begin(_ header: WebSocketFrameHeader) throws(WebSocketProtocolError) -> FrameKind {
        if header.isControl {
            self.current = .control(opcode: header.opcode)
            return self.current
        }
        switch header.opcode {
        case 0x0:
            guard self.inMessage else { throw .protocolViolation("continuation frame with no message to continue") }
        default:
            guard !self.inMessage else { throw .protocolViolation("new data frame inside a fragmented message") }
            self.inMessage = true
            self.isText = header.opcode == 0x1
            self.messageSize = 0
            self.utf8 = UTF8StreamValidator()
        }
        self.messageSize += header.payloadLength
        if self.maxMessageSize > 0 && self.messageSize > self.maxMessageSize {
            throw .tooLarge("message larger than \(self.maxMessageSize) bytes")
        }
        self.current = .data
        self.currentIsFinal = header.fin
        return .data
    }

    /// Checks the next unmasked piece of a data frame's payload.
    public mutating func checkData(_ bytes: UnsafeRawBufferPointer) throws(WebSocketProtocolError) {
        if self.isText && !self.utf8.validate(bytes) {
            throw .invalidUTF8("text message is not valid UTF-8")
        }
    }

    /// Marks the end of the current data frame's payload.
    public mutating func endDataFrame() throws(WebSocketProtocolError) {
        guard self.currentIsFinal else { return }
        if self.isText && !self.utf8.isAtBoundary {
            throw .invalidUTF8("text message ends inside a UTF-8 sequence")
        }
        self.inMessage = false
    }
}
