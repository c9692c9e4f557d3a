import Testing

@testable import FerryCore

@Suite("Unit: UTF-8 stream validator")
struct UTF8StreamValidatorUnitTests {
    private static let samples: [String] = [
        "",
        "plain ASCII text that is longer than eight bytes",
        "Grüße aus Köln",
        "Ελληνικά και Русский",
        "日本語のテキスト、中文文本",
        "emoji 🚢⚓️🌊 and flags 🇩🇪🇯🇵",
        "mixed: a\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}z",
        "\u{D7FF}\u{E000}\u{FFFD}",
        "12345678€12345678😀1234567",
    ]

    @Test("valid strings are accepted whole")
    func validWhole() {
        for sample in Self.samples {
            #expect(validateUTF8(pieces: [Array(sample.utf8)]) == .valid, "\(sample)")
        }
    }

    @Test("valid strings split at every byte offset are accepted")
    func validSplitEverywhere() {
        for sample in Self.samples {
            let bytes = Array(sample.utf8)
            for cut in 0...bytes.count {
                let first = Array(bytes[..<cut])
                let second = Array(bytes[cut...])
                var validator = UTF8StreamValidator()
                #expect(validate(&validator, first), "\(sample) cut at \(cut)")
                // At the cut the validator is on a boundary exactly when the cut is between code points.
                let onBoundary = cut == bytes.count || bytes[cut] & 0xC0 != 0x80
                #expect(validator.isAtBoundary == onBoundary, "\(sample) cut at \(cut)")
                #expect(validate(&validator, second), "\(sample) cut at \(cut)")
                #expect(validator.isAtBoundary, "\(sample) cut at \(cut)")
            }
        }
    }

    @Test("valid strings fed one byte at a time are accepted")
    func validByteByByte() {
        for sample in Self.samples {
            #expect(validateUTF8(pieces: Array(sample.utf8).map { [$0] }) == .valid, "\(sample)")
        }
    }

    @Test(
        "overlong encodings are rejected",
        arguments: [
            [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
        ] as [[UInt8]]
    )
    func overlong(bytes: [UInt8]) {
        #expect(validateUTF8(pieces: [bytes]) == .invalid)
        #expect(validateUTF8(pieces: [Array("abcdefghij".utf8) + bytes]) == .invalid, "after an ASCII run")
        #expect(validateUTF8(pieces: bytes.map { [$0] }) == .invalid, "byte by byte")
    }

    @Test("surrogates are rejected", arguments: [[0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xED, 0xAD, 0xBF]] as [[UInt8]])
    func surrogates(bytes: [UInt8]) {
        #expect(validateUTF8(pieces: [bytes]) == .invalid)
        #expect(validateUTF8(pieces: bytes.map { [$0] }) == .invalid, "byte by byte")
    }

    @Test("the edges next to the excluded ranges are accepted")
    func edges() {
        let cases: [[UInt8]] = [
            [0xC2, 0x80],  // U+0080
            [0xE0, 0xA0, 0x80],  // U+0800
            [0xED, 0x9F, 0xBF],  // U+D7FF
            [0xEE, 0x80, 0x80],  // U+E000
            [0xF0, 0x90, 0x80, 0x80],  // U+10000
            [0xF4, 0x8F, 0xBF, 0xBF],  // U+10FFFF
        ]
        for bytes in cases {
            #expect(validateUTF8(pieces: [bytes]) == .valid, "\(bytes)")
            #expect(validateUTF8(pieces: bytes.map { [$0] }) == .valid, "\(bytes) byte by byte")
        }
    }

    @Test("code points above U+10FFFF are rejected", arguments: [[0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF7, 0xBF, 0xBF, 0xBF], [0xF8, 0x88, 0x80, 0x80, 0x80]] as [[UInt8]])
    func aboveMax(bytes: [UInt8]) {
        #expect(validateUTF8(pieces: [bytes]) == .invalid)
    }

    @Test("stray continuation bytes and invalid bytes are rejected")
    func strayBytes() {
        for bytes: [UInt8] in [[0x80], [0xBF], [0x41, 0x80], [0xC3, 0xA9, 0xA9], [0xFE], [0xFF], Array("12345678".utf8) + [0x80]] {
            #expect(validateUTF8(pieces: [bytes]) == .invalid, "\(bytes)")
        }
        // A lead byte followed by something other than a continuation.
        for bytes: [UInt8] in [[0xC3, 0x41], [0xE2, 0x82, 0x41], [0xF0, 0x9F, 0x98, 0xC3], [0xE2, 0xC3]] {
            #expect(validateUTF8(pieces: [bytes]) == .invalid, "\(bytes)")
        }
    }

    @Test("truncated sequences pass validation but are not at a boundary")
    func truncated() {
        for bytes: [UInt8] in [[0xC3], [0xE2], [0xE2, 0x82], [0xF0, 0x9F], [0xF0, 0x9F, 0x98], Array("abcdefgh".utf8) + [0xE2]] {
            #expect(validateUTF8(pieces: [bytes]) == .truncated, "\(bytes)")
        }
        // Completing one later makes it whole again.
        var validator = UTF8StreamValidator()
        #expect(validate(&validator, [0xF0, 0x9F]))
        #expect(!validator.isAtBoundary)
        #expect(validate(&validator, [0x98]))
        #expect(!validator.isAtBoundary)
        #expect(validate(&validator, [0x80]))
        #expect(validator.isAtBoundary)
    }

    @Test("a fresh validator is at a boundary and accepts empty input")
    func fresh() {
        var validator = UTF8StreamValidator()
        #expect(validator.isAtBoundary)
        #expect(validate(&validator, []))
        #expect(validator.isAtBoundary)
    }

    @Test("agrees with String(validating:) on random bytes, whole and split")
    func randomAgainstStandardLibrary() {
        var rng = SplitMix64(seed: 0x5EED_F00D)
        // Byte choices weighted towards the interesting ones, so that valid multi-byte sequences come up.
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
            0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        var validCount = 0
        for round in 0..<20_000 {
            let count = Int(rng.next() % 24)
            var bytes: [UInt8] = []
            for _ in 0..<count {
                let roll = rng.next()
                switch roll % 4 {
                case 0: bytes.append(UInt8(truncatingIfNeeded: roll >> 8))
                case 1: bytes.append(UInt8(truncatingIfNeeded: 0x80 | ((roll >> 8) & 0x3F)))  // continuation
                case 2: bytes.append(UInt8(truncatingIfNeeded: (roll >> 8) & 0x7F))  // ASCII
                default: bytes.append(interesting[Int((roll >> 8) % UInt64(interesting.count))])
                }
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if expected { validCount += 1 }
            #expect((validateUTF8(pieces: [bytes]) == .valid) == expected, "round \(round): \(bytes)")
            let cut = count == 0 ? 0 : Int(rng.next() % UInt64(count + 1))
            let split = validateUTF8(pieces: [Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect((split == .valid) == expected, "round \(round) cut at \(cut): \(bytes)")
        }
        // The generator must produce both outcomes for the comparison to mean something.
        #expect(validCount > 500)
        #expect(validCount < 19_500)
    }

    @Test("agrees with String(validating:) on random valid text with a corrupted byte")
    func randomCorruptedText() {
        var rng = SplitMix64(seed: 42)
        let scalars: [Unicode.Scalar] = ["a", "Z", "\u{7F}", "é", "\u{7FF}", "€", "\u{FFFD}", "\u{E000}", "😀", "\u{10FFFF}"]
        for round in 0..<3_000 {
            var text = String.UnicodeScalarView()
            for _ in 0..<(1 + Int(rng.next() % 20)) { text.append(scalars[Int(rng.next() % UInt64(scalars.count))]) }
            var bytes = Array(String(text).utf8)
            #expect(validateUTF8(pieces: [bytes]) == .valid, "round \(round)")
            let position = Int(rng.next() % UInt64(bytes.count))
            bytes[position] = UInt8(truncatingIfNeeded: rng.next())
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect((validateUTF8(pieces: [bytes]) == .valid) == expected, "round \(round): \(bytes)")
            #expect((validateUTF8(pieces: bytes.map { [$0] }) == .valid) == expected, "round \(round) byte by byte: \(bytes)")
        }
    }
}

// MARK: - Helpers

private enum UTF8Outcome: Equatable {
    case valid
    /// Every byte was acceptable but the input ends inside a code point.
    case truncated
    case invalid
}

private func validate(_ validator: inout UTF8StreamValidator, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { validator.validate($0) }
}

private func validateUTF8(pieces: [[UInt8]]) -> UTF8Outcome {
    var validator = UTF8StreamValidator()
    for piece in pieces where !validate(&validator, piece) {
        return .invalid
    }
    return validator.isAtBoundary ? .valid : .truncated
}

/// A small seeded generator, so failures reproduce.
private struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
