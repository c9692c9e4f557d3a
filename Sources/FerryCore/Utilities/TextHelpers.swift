/// Small text helpers shared by the HTTP, token and proxy-header code (Foundation is not needed for them).
extension StringProtocol where SubSequence == Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    public var trimmingSpaces: Substring {
        self.trimming { $0 == " " || $0 == "\t" }
    }

    /// Without the leading and trailing characters `isTrimmed` picks.
    public func trimming(_ isTrimmed: (Character) -> Bool) -> Substring {
        var value = self[...]
        while let first = value.first, isTrimmed(first) { value = value.dropFirst() }
        while let last = value.last, isTrimmed(last) { value = value.dropLast() }
        return value
    }
}

/// The folder part of a path: `/a/b` → `/a`, `/b` → `/`, `b` → `.`.
public func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

enum PercentEncoding {
    /// Decodes `%XX` escapes (and `+` as a space in a query); nil for a malformed escape or bytes that
    /// are not UTF-8.
    static func decode(_ text: Substring, plusIsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        let utf8 = text.utf8
        var index = utf8.startIndex
        while index < utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            switch byte {
            case UInt8(ascii: "%"):
                guard index < utf8.endIndex, let high = Self.hex(utf8[index]) else { return nil }
                index = utf8.index(after: index)
                guard index < utf8.endIndex, let low = Self.hex(utf8[index]) else { return nil }
                index = utf8.index(after: index)
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
