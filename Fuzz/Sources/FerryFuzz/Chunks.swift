/// How a target splits its input into reads, so that a frame, header or request cut at any point is
/// explored: one control byte picks the pattern (the fuzzer mutates it like any other byte).
enum Chunks {
    /// - `control & 3 == 0`: one read;
    /// - `1`: reads of `(control >> 2) + 1` bytes (1 to 64);
    /// - `2`: one byte per read;
    /// - `3`: sizes from 1 to 16, drawn from a small generator seeded with `control`.
    static func split(_ bytes: ArraySlice<UInt8>, control: UInt8) -> [ArraySlice<UInt8>] {
        var chunks: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var state = UInt32(control) &* 2_654_435_761 | 1
        while start < bytes.endIndex {
            let size: Int
            switch control & 3 {
            case 0: size = bytes.count
            case 1: size = Int(control >> 2) + 1
            case 2: size = 1
            default:
                state ^= state << 13
                state ^= state >> 17
                state ^= state << 5
                size = Int(state % 16) + 1
            }
            let end = min(bytes.endIndex, start + size)
            chunks.append(bytes[start..<end])
            start = end
        }
        return chunks
    }
}
