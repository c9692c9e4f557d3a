import NIOHTTP1

/// Reads the few headers every upgrade checks without building anything: NIO's `headers[name]` makes
/// an array of strings and `headers[canonicalForm:]` an array of substrings, and lowercasing a value
/// to compare it makes another string. On the handshake path that was about 25 heap allocations per
/// upgrade (a uprobe profile of `malloc` during `ferry-bench --scenarios handshakes`, BENCHMARKS.md). Names and tokens are
/// compared byte by byte, ASCII case-insensitively (RFC 9110 §5.1, §7.8).
extension HTTPHeaders {
    /// How many fields are named `name`.
    func count(named name: String) -> Int {
        var count = 0
        for (field, _) in self where HeaderScan.equalsIgnoringCase(field.utf8, name.utf8) { count += 1 }
        return count
    }

    /// The value of the one field named `name`, without optional whitespace; nil if there is none or
    /// more than one.
    func single(named name: String) -> Substring? {
        var found: String?
        for (field, value) in self where HeaderScan.equalsIgnoringCase(field.utf8, name.utf8) {
            guard found == nil else { return nil }
            found = value
        }
        return found?.trimmingSpaces
    }

    /// Whether a comma-separated list in the fields named `name` holds `token` (the way
    /// `Connection: keep-alive, Upgrade` holds `upgrade`).
    func listContains(_ name: String, token: String) -> Bool {
        for (field, value) in self where HeaderScan.equalsIgnoringCase(field.utf8, name.utf8) {
            let bytes = value.utf8
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
                let element = HeaderScan.trimmed(bytes[start..<end])
                if !element.isEmpty, HeaderScan.equalsIgnoringCase(element, token.utf8) { return true }
                start = end < bytes.endIndex ? bytes.index(after: end) : end
            }
        }
        return false
    }
}

enum HeaderScan {
    static func equalsIgnoringCase<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool where A.Element == UInt8, B.Element == UInt8 {
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { Self.lower($0) == Self.lower($1) }
    }

    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// Without leading and trailing spaces and tabs.
    static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return bytes
    }
}
