import FerryCore

/// Makes a received line safe to pass to others. Terminal users see other people's bytes raw, so
/// control characters (escape sequences that clear or retitle a terminal) and bidirectional
/// overrides (text that displays in another order than it reads) are removed; bytes that are not
/// UTF-8 become U+FFFD, so every member always receives UTF-8. The `\r` of a `\r\n` line end is a
/// control character too.
enum ChatLine {
    static func clean(_ bytes: some Collection<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar == "\t" {
                cleaned.append(" ")
            } else if scalar.properties.generalCategory == .control || Self.isBidiControl(scalar) {
                continue
            } else {
                cleaned.append(scalar)
            }
        }
        return String(cleaned)
    }

    private static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200E, 0x200F, 0x061C, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
