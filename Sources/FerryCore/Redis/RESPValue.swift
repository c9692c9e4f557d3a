import NIOCore

/// One reply of the Redis serialization protocol (RESP2), as ``RESPReplyParser`` reads it.
///
/// Ferry speaks only the part of Redis it needs for tokens (AUTH, SELECT, GET, PING, PSUBSCRIBE) and
/// does it itself: none of the packages this project may use is a Swift Redis client, and the part
/// needed is small enough to own, bound and fuzz (see ``RESPReplyParser``).
public enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message`: the command failed; the connection is still good.
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$3 abc`; nil is the null bulk string (`$-1`), which GET answers for a missing key.
    case bulkString(ByteBuffer?)
    /// `*2 …`; nil is the null array (`*-1`).
    case array([RESPValue]?)

    /// The text of a simple or bulk string, nil for anything else.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let buffer?): return String(buffer: buffer)
        default: return nil
        }
    }
}
