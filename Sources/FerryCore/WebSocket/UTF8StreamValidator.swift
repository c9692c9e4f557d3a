/// Validates UTF-8 that arrives in pieces (a text message split over frames and reads), keeping the
/// state of a code point cut at a piece boundary. Rejects overlong forms, surrogates and values above
/// U+10FFFF (RFC 3629), as RFC 6455 requires for text messages.
public struct UTF8StreamValidator: Sendable {
    /// Continuation bytes still expected for the current code point.
    private var needed: UInt8 = 0
    /// The allowed range of the next continuation byte (narrower right after E0, ED, F0 and F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// True when no code point is cut open at the end of what was validated so far.
    public var isAtBoundary: Bool { self.needed == 0 }

    /// Validates the next piece; returns false at the first byte that cannot be valid UTF-8.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        while index < count {
            if self.needed == 0 {
                // ASCII runs, eight bytes at a time.
                while index + 8 <= count,
                    bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
                guard index < count else { break }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: self.expect(1, 0x80, 0xBF)
                case 0xE0: self.expect(2, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE, 0xEF: self.expect(2, 0x80, 0xBF)
                case 0xED: self.expect(2, 0x80, 0x9F)
                case 0xF0: self.expect(3, 0x90, 0xBF)
                case 0xF1...0xF3: self.expect(3, 0x80, 0xBF)
                case 0xF4: self.expect(3, 0x80, 0x8F)
                default: return false
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= self.lower && byte <= self.upper else { return false }
                self.needed -= 1
                self.lower = 0x80
                self.upper = 0xBF
            }
        }
        return true
    }

    private mutating func expect(_ needed: UInt8, _ lower: UInt8, _ upper: UInt8) {
        self.needed = needed
        self.lower = lower
        self.upper = upper
    }
}
