import NIOCore

/// Reads RESP2 replies from a byte stream that arrives in pieces, one value at a time.
///
/// A value type that keeps where it is between reads, and checks each rule as its bytes arrive: an
/// unknown type byte, a line that runs past ``Limits/maxLineLength``, a length beyond the limits or a
/// missing CRLF is an error at that byte, before anything is buffered for it. The limits exist
/// because the replies come from a network peer: a bulk string is a token's target (tens of bytes),
/// so ``Limits/maxBulkLength`` (512 KiB) is far above any real value yet keeps one bad reply from
/// holding megabytes; arrays are pub/sub messages and small confirmations.
public struct RESPReplyParser: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Longest bulk string; Redis allows 512 MB, a token's target is tens of bytes.
        public var maxBulkLength = 512 * 1024
        /// Most elements in one array (pub/sub messages have 3 or 4).
        public var maxArrayCount = 1024
        /// Arrays within arrays.
        public var maxDepth = 8
        /// Longest simple string, error or number line, CRLF excluded.
        public var maxLineLength = 8 * 1024

        public init() {}
    }

    public enum Failure: Error, Equatable, Sendable {
        case unknownType(UInt8)
        case lineTooLong
        /// A length or integer that is not a decimal number (or does not fit).
        case badNumber
        /// A CR not followed by LF, an LF without CR, or bulk data not followed by CRLF.
        case missingCRLF
        case bulkTooLong(Int64)
        case arrayTooLong(Int64)
        case tooDeep
    }

    private enum LineKind {
        case simple, error, integer, bulkLength, arrayLength
    }

    private enum State {
        case type
        case line(LineKind, [UInt8], sawCR: Bool)
        case bulk(remaining: Int, ByteBuffer)
        case bulkEnd(sawCR: Bool)
    }

    public let limits: Limits
    private var state = State.type
    /// Arrays being filled, innermost last: how many elements each still needs, and those it has.
    private var open: [(remaining: Int, items: [RESPValue])] = []
    /// The bulk string whose data has been read, waiting for its CRLF.
    private var finishedBulk: ByteBuffer?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True between values: nothing of a value has been read.
    public var isIdle: Bool {
        if case .type = self.state, self.open.isEmpty { return true }
        return false
    }

    /// Consumes bytes from `buffer` until one whole value is read (returned) or the bytes run out (nil;
    /// what was read is kept for the next call). After an error the stream cannot be resynchronised.
    public mutating func next(_ buffer: inout ByteBuffer) throws(Failure) -> RESPValue? {
        while let byte = buffer.readInteger(as: UInt8.self) {
            if let value = try self.consume(byte, &buffer), let whole = self.complete(value) {
                return whole
            }
        }
        return nil
    }

    /// One byte; bulk data is taken in a run from `buffer`. Returns a finished value (not yet placed in
    /// its array).
    private mutating func consume(_ byte: UInt8, _ buffer: inout ByteBuffer) throws(Failure) -> RESPValue? {
        switch self.state {
        case .type:
            let kind: LineKind
            switch byte {
            case UInt8(ascii: "+"): kind = .simple
            case UInt8(ascii: "-"): kind = .error
            case UInt8(ascii: ":"): kind = .integer
            case UInt8(ascii: "$"): kind = .bulkLength
            case UInt8(ascii: "*"): kind = .arrayLength
            default: throw .unknownType(byte)
            }
            self.state = .line(kind, [], sawCR: false)
            return nil
        case .line(let kind, var bytes, let sawCR):
            if sawCR {
                guard byte == UInt8(ascii: "\n") else { throw .missingCRLF }
                self.state = .type
                return try self.finishLine(kind, bytes)
            }
            if byte == UInt8(ascii: "\r") {
                self.state = .line(kind, bytes, sawCR: true)
                return nil
            }
            guard byte != UInt8(ascii: "\n") else { throw .missingCRLF }
            guard bytes.count < self.limits.maxLineLength else { throw .lineTooLong }
            // A number line is short; check each byte as it comes rather than at the end.
            if kind != .simple && kind != .error {
                let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                guard isDigit || (byte == UInt8(ascii: "-") && bytes.isEmpty), bytes.count < 20 else { throw .badNumber }
            }
            self.state = .line(kind, [], sawCR: false)  // drop the array's other reference before appending
            bytes.append(byte)
            self.state = .line(kind, bytes, sawCR: false)
            return nil
        case .bulk(let remaining, var data):
            // The byte already read is the first of the run.
            buffer.moveReaderIndex(to: buffer.readerIndex - 1)
            let take = min(remaining, buffer.readableBytes)
            var slice = buffer.readSlice(length: take)!
            self.state = .type
            data.writeBuffer(&slice)
            if take == remaining {
                self.finishedBulk = data
                self.state = .bulkEnd(sawCR: false)
            } else {
                self.state = .bulk(remaining: remaining - take, data)
            }
            return nil
        case .bulkEnd(let sawCR):
            if !sawCR {
                guard byte == UInt8(ascii: "\r") else { throw .missingCRLF }
                self.state = .bulkEnd(sawCR: true)
                return nil
            }
            guard byte == UInt8(ascii: "\n") else { throw .missingCRLF }
            self.state = .type
            let data = self.finishedBulk
            self.finishedBulk = nil
            return .bulkString(data)
        }
    }

    private mutating func finishLine(_ kind: LineKind, _ bytes: [UInt8]) throws(Failure) -> RESPValue? {
        switch kind {
        case .simple:
            return .simpleString(String(decoding: bytes, as: UTF8.self))
        case .error:
            return .error(String(decoding: bytes, as: UTF8.self))
        case .integer:
            return .integer(try Self.number(bytes))
        case .bulkLength:
            let length = try Self.number(bytes)
            if length == -1 { return .bulkString(nil) }
            guard length >= 0, length <= self.limits.maxBulkLength else { throw .bulkTooLong(length) }
            if length == 0 {
                self.finishedBulk = ByteBuffer()
                self.state = .bulkEnd(sawCR: false)
            } else {
                self.state = .bulk(remaining: Int(length), ByteBuffer())
            }
            return nil
        case .arrayLength:
            let count = try Self.number(bytes)
            if count == -1 { return .array(nil) }
            guard count >= 0, count <= self.limits.maxArrayCount else { throw .arrayTooLong(count) }
            if count == 0 { return .array([]) }
            guard self.open.count < self.limits.maxDepth else { throw .tooDeep }
            self.open.append((Int(count), []))
            return nil
        }
    }

    /// Places a finished value in the array being filled; returns the outermost value once it is whole.
    private mutating func complete(_ value: RESPValue) -> RESPValue? {
        var value = value
        while !self.open.isEmpty {
            self.open[self.open.count - 1].items.append(value)
            self.open[self.open.count - 1].remaining -= 1
            guard self.open[self.open.count - 1].remaining == 0 else { return nil }
            value = .array(self.open.removeLast().items)
        }
        return value
    }

    /// `-1`, `0`, `42`: an optional minus and digits that fit in 64 bits.
    private static func number(_ bytes: [UInt8]) throws(Failure) -> Int64 {
        let negative = bytes.first == UInt8(ascii: "-")
        let digits = negative ? bytes.dropFirst() : bytes[...]
        guard !digits.isEmpty else { throw .badNumber }
        var value: Int64 = 0
        for digit in digits {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw .badNumber }
            value = sum
        }
        return negative ? -value : value
    }
}
