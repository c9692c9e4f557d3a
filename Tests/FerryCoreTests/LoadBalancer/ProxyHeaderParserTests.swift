import NIOCore
import Testing

@testable import FerryCore

extension OperationsTests {
    /// The PROXY v1/v2 header parser on its own: valid headers, every prefix of them, malformed input,
    /// and a seeded fuzz loop.
    @Suite("PROXY header parser")
    struct ProxyHeaderParserTests {
        static func address(_ ip: String, _ port: Int) -> SocketAddress {
            try! SocketAddress(ipAddress: ip, port: port)
        }

        static let tcp4Line = "PROXY TCP4 192.0.2.10 198.51.100.20 56324 443\r\n"
        static let tcp6Line = "PROXY TCP6 2001:db8::1 2001:db8::2 4711 8443\r\n"
        static let tcp6Longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

        static let v2Inet4WithTLVs = PROXYBytes.v2Inet(
            source: PROXYBytes.address("203.0.113.7"),
            destination: PROXYBytes.address("10.1.2.3"),
            sourcePort: 40000,
            destinationPort: 6080,
            tlvs: PROXYBytes.tlv(type: 0x02, value: Array("relay.example".utf8)) + PROXYBytes.tlv(type: 0x04, value: [0, 0, 0, 0, 0, 0, 0, 0])
        )
        static let v2Inet6WithTLVs = PROXYBytes.v2Inet6(
            source: PROXYBytes.address("2001:db8::aa"),
            destination: PROXYBytes.address("2001:db8::bb"),
            sourcePort: 1,
            destinationPort: 65535,
            tlvs: PROXYBytes.tlv(type: 0x01, value: Array("h2".utf8))
        )
        static let v2Local = PROXYBytes.v2(versionCommand: 0x20, familyTransport: 0x00, body: [])
        static let v2Unspec = PROXYBytes.v2(versionCommand: 0x21, familyTransport: 0x00, body: [])

        /// Every valid header the tests know, with what it must parse to.
        static var validHeaders: [(name: String, bytes: [UInt8], expected: ProxyHeader)] {
            [
                ("v1 TCP4", PROXYBytes.v1(tcp4Line), .proxied(source: address("192.0.2.10", 56324), destination: address("198.51.100.20", 443))),
                ("v1 TCP6", PROXYBytes.v1(tcp6Line), .proxied(source: address("2001:db8::1", 4711), destination: address("2001:db8::2", 8443))),
                (
                    "v1 TCP6 longest", PROXYBytes.v1(tcp6Longest),
                    .proxied(
                        source: address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
                        destination: address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
                    )
                ),
                ("v1 UNKNOWN", PROXYBytes.v1("PROXY UNKNOWN\r\n"), .local),
                ("v1 UNKNOWN with addresses", PROXYBytes.v1("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), .local),
                ("v2 INET + TLVs", v2Inet4WithTLVs, .proxied(source: address("203.0.113.7", 40000), destination: address("10.1.2.3", 6080))),
                ("v2 INET6 + TLV", v2Inet6WithTLVs, .proxied(source: address("2001:db8::aa", 1), destination: address("2001:db8::bb", 65535))),
                ("v2 LOCAL", v2Local, .local),
                ("v2 UNSPEC", v2Unspec, .local),
            ]
        }

        // MARK: Valid headers

        @Test("v1 TCP4, TCP6 and UNKNOWN parse to their addresses and the line length")
        func v1Valid() throws {
            let tcp4 = try #require(try ProxyHeaderParser.parse(PROXYBytes.v1(Self.tcp4Line)))
            #expect(tcp4.0 == .proxied(source: Self.address("192.0.2.10", 56324), destination: Self.address("198.51.100.20", 443)))
            #expect(tcp4.1 == Self.tcp4Line.utf8.count)

            let tcp6 = try #require(try ProxyHeaderParser.parse(PROXYBytes.v1(Self.tcp6Line)))
            #expect(tcp6.0 == .proxied(source: Self.address("2001:db8::1", 4711), destination: Self.address("2001:db8::2", 8443)))
            #expect(tcp6.1 == Self.tcp6Line.utf8.count)

            let longest = try #require(try ProxyHeaderParser.parse(PROXYBytes.v1(Self.tcp6Longest)))
            #expect(Self.tcp6Longest.utf8.count == 104)
            #expect(longest.1 == 104)

            let unknown = try #require(try ProxyHeaderParser.parse(PROXYBytes.v1("PROXY UNKNOWN\r\n")))
            #expect(unknown.0 == .local)
            #expect(unknown.1 == 15)
        }

        @Test("bytes after the header are not consumed")
        func trailingBytesLeftAlone() throws {
            for (name, bytes, expected) in Self.validHeaders {
                let request = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                let parsed = try #require(try ProxyHeaderParser.parse(bytes + request), "\(name)")
                #expect(parsed.0 == expected, "\(name)")
                #expect(parsed.1 == bytes.count, "\(name): consumed \(parsed.1) of a \(bytes.count)-byte header")
            }
        }

        @Test("v2 PROXY INET and INET6: addresses and ports read, TLVs after them skipped")
        func v2Addresses() throws {
            let inet = try #require(try ProxyHeaderParser.parse(Self.v2Inet4WithTLVs))
            #expect(inet.0 == .proxied(source: Self.address("203.0.113.7", 40000), destination: Self.address("10.1.2.3", 6080)))
            #expect(inet.1 == Self.v2Inet4WithTLVs.count)
            #expect(inet.1 > 16 + 12, "the TLVs are part of the header")

            let inet6 = try #require(try ProxyHeaderParser.parse(Self.v2Inet6WithTLVs))
            #expect(inet6.0 == .proxied(source: Self.address("2001:db8::aa", 1), destination: Self.address("2001:db8::bb", 65535)))
            #expect(inet6.1 == 16 + 36 + 5)
        }

        @Test("v2 LOCAL, UNSPEC, UNIX and UDP stand for the TCP peer (.local), whole header consumed")
        func v2Local() throws {
            let local = try #require(try ProxyHeaderParser.parse(Self.v2Local))
            #expect(local.0 == .local)
            #expect(local.1 == 16)

            // LOCAL with an address block (a health check may still carry one): still .local, block skipped.
            let localWithBlock = PROXYBytes.v2(versionCommand: 0x20, familyTransport: 0x11, body: [UInt8](repeating: 7, count: 12))
            #expect(try ProxyHeaderParser.parse(localWithBlock).map { $0.0 } == .local)
            #expect(try ProxyHeaderParser.parse(localWithBlock).map { $0.1 } == 28)

            let unspec = try #require(try ProxyHeaderParser.parse(Self.v2Unspec))
            #expect(unspec.0 == .local)
            #expect(unspec.1 == 16)

            let unix = PROXYBytes.v2(familyTransport: 0x31, body: [UInt8](repeating: 0, count: 216))
            #expect(try ProxyHeaderParser.parse(unix).map { $0.0 } == .local)
            #expect(try ProxyHeaderParser.parse(unix).map { $0.1 } == 16 + 216)

            let udp4 = PROXYBytes.v2(familyTransport: 0x12, body: PROXYBytes.address("192.0.2.1") + PROXYBytes.address("192.0.2.2") + [0, 53, 0, 53])
            #expect(try ProxyHeaderParser.parse(udp4).map { $0.0 } == .local)
        }

        // MARK: Prefixes

        @Test("every proper prefix of a valid header needs more and never throws")
        func everyPrefixNeedsMore() {
            for (name, bytes, expected) in Self.validHeaders {
                for length in 0..<bytes.count {
                    let outcome = ParseOutcome(Array(bytes[..<length]))
                    #expect(outcome == .needsMore, "\(name), first \(length) of \(bytes.count) bytes: \(outcome)")
                }
                #expect(ParseOutcome(bytes) == .parsed(expected, bytes.count), "\(name)")
            }
        }

        @Test("byte-by-byte and odd-sized arrival give the same result as one read")
        func streamingMatchesWhole() {
            for (name, bytes, expected) in Self.validHeaders {
                let stream = bytes + Array("GET / HTTP/1.1\r\n\r\n".utf8)
                for chunks in [[1], [2], [3, 7], [5, 1, 16], [1000]] {
                    #expect(streamingOutcome(stream, chunkSizes: chunks) == .parsed(expected, bytes.count), "\(name), chunks \(chunks)")
                }
            }
        }

        // MARK: Refusals

        /// Inputs that must be refused, each with why.
        static var malformed: [(String, [UInt8])] {
            let valid4 = Self.v2Inet4WithTLVs
            func patched(_ bytes: [UInt8], _ index: Int, _ value: UInt8) -> [UInt8] {
                var copy = bytes
                copy[index] = value
                return copy
            }
            return [
                ("missing header: an HTTP request", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
                ("missing header: TLS ClientHello", [0x16, 0x03, 0x01, 0x00, 0x10]),
                ("v1 lower case", Array("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
                ("v1 wrong word", Array("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
                ("v1 no space", Array("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
                ("v1 longer than 107 bytes without CRLF", Array(("PROXY UNKNOWN " + String(repeating: "x", count: 100)).utf8)),
                ("v1 CRLF after byte 107", Array(("PROXY UNKNOWN " + String(repeating: "x", count: 93) + "\r\n").utf8)),
                ("v1 LF without CR", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8)),
                ("v1 CR not followed by LF", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX".utf8)),
                ("v1 no protocol", Array("PROXY \r\n".utf8)),
                ("v1 unknown protocol", Array("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
                ("v1 TCP4 too few fields", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8)),
                ("v1 TCP4 too many fields", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".utf8)),
                ("v1 double space", Array("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".utf8)),
                ("v1 trailing space", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n".utf8)),
                ("v1 port with leading zero", Array("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n".utf8)),
                ("v1 port 00", Array("PROXY TCP4 1.2.3.4 5.6.7.8 00 443\r\n".utf8)),
                ("v1 port > 65535", Array("PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n".utf8)),
                ("v1 port huge", Array("PROXY TCP4 1.2.3.4 5.6.7.8 99999999999999999999 443\r\n".utf8)),
                ("v1 port with sign", Array("PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n".utf8)),
                ("v1 port negative", Array("PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n".utf8)),
                ("v1 port empty-ish", Array("PROXY TCP4 1.2.3.4 5.6.7.8 x 443\r\n".utf8)),
                ("v1 address with leading zeros", Array("PROXY TCP4 192.168.001.001 5.6.7.8 1 2\r\n".utf8)),
                ("v1 address out of range", Array("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n".utf8)),
                ("v1 address short", Array("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n".utf8)),
                ("v1 host name", Array("PROXY TCP4 localhost 5.6.7.8 1 2\r\n".utf8)),
                ("v1 IPv6 in TCP4", Array("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n".utf8)),
                ("v1 IPv4 in TCP6", Array("PROXY TCP6 1.2.3.4 2001:db8::2 1 2\r\n".utf8)),
                ("v1 mixed families in TCP6", Array("PROXY TCP6 2001:db8::1 5.6.7.8 1 2\r\n".utf8)),
                ("v1 bracketed IPv6", Array("PROXY TCP6 [2001:db8::1] [2001:db8::2] 1 2\r\n".utf8)),
                ("v1 not UTF-8", Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 ".utf8) + [0xFF, 0xFE] + Array("\r\n".utf8)),
                ("v2 wrong signature byte 5", patched(valid4, 5, 0x0E)),
                ("v2 wrong signature last byte", patched(valid4, 11, 0x0B)),
                ("v2 version nibble 1", patched(valid4, 12, 0x11)),
                ("v2 version nibble 3", patched(valid4, 12, 0x31)),
                ("v2 version nibble 0", patched(valid4, 12, 0x01)),
                ("v2 command 2", patched(valid4, 12, 0x22)),
                ("v2 command 15", patched(valid4, 12, 0x2F)),
                ("v2 family 4", patched(valid4, 13, 0x41)),
                ("v2 family 15", patched(valid4, 13, 0xF1)),
                ("v2 transport 3", patched(valid4, 13, 0x13)),
                ("v2 INET block too short", PROXYBytes.v2(familyTransport: 0x11, body: [UInt8](repeating: 1, count: 11))),
                ("v2 INET6 block too short", PROXYBytes.v2(familyTransport: 0x21, body: [UInt8](repeating: 1, count: 35))),
                ("v2 INET6 block the size of INET", PROXYBytes.v2(familyTransport: 0x21, body: [UInt8](repeating: 1, count: 12))),
                ("v2 length > 4096", PROXYBytes.v2(familyTransport: 0x11, body: [], length: 4097)),
                ("v2 length 65535", PROXYBytes.v2(familyTransport: 0x11, body: [], length: 65535)),
            ]
        }

        @Test("malformed, truncated-then-wrong, oversized and missing headers throw ProxyProtocolError")
        func malformedThrows() {
            for (name, bytes) in Self.malformed {
                #expect(throws: ProxyProtocolError.self, "\(name)") { try ProxyHeaderParser.parse(bytes) }
            }
        }

        @Test("a refusal comes as soon as the deciding bytes are there, without waiting for the rest")
        func refusedEarly() {
            // An HTTP request is refused on its first byte; a wrong v2 signature on the wrong byte.
            #expect(ParseOutcome(Array("G".utf8)).isFailure)
            #expect(ParseOutcome(PROXYBytes.v2Signature.prefix(5) + [0x0E]).isFailure)
            #expect(ParseOutcome(Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8)).isFailure)
            // A 4 KiB+ v2 length is refused from the 16-byte fixed part, before any body arrives.
            #expect(ParseOutcome(PROXYBytes.v2(familyTransport: 0x11, body: [], length: 5000)).isFailure)
            // The longest v1 line that is still missing its CRLF waits; one byte more and it is refused.
            let almost = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 92)).utf8)
            #expect(almost.count == 106)
            #expect(ParseOutcome(almost) == .needsMore)
            #expect(ParseOutcome(almost + [0x78]).isFailure)
            #expect(ParseOutcome(almost + [0x0D]) == .needsMore)
            #expect(ParseOutcome(almost + [0x0D, 0x0A]).isFailure, "a 108-byte line is over the 107-byte limit")
            let longestAllowed = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n").utf8)
            #expect(longestAllowed.count == 107)
            #expect(ParseOutcome(longestAllowed) == .parsed(.local, 107))
        }

        @Test("the v2 length limit: 16 + 4096 bytes is accepted, one more is refused")
        func v2LengthLimit() {
            let body = PROXYBytes.address("192.0.2.1") + PROXYBytes.address("192.0.2.2") + [0, 1, 0, 2]
            let padding = PROXYBytes.tlv(type: 0x04, value: [UInt8](repeating: 0, count: 4096 - body.count - 3))
            let largest = PROXYBytes.v2(familyTransport: 0x11, body: body + padding)
            #expect(largest.count == 16 + 4096)
            #expect(
                ParseOutcome(largest) == .parsed(.proxied(source: Self.address("192.0.2.1", 1), destination: Self.address("192.0.2.2", 2)), 16 + 4096)
            )
            #expect(ParseOutcome(Array(largest.dropLast())) == .needsMore)
            #expect(ParseOutcome(PROXYBytes.v2(familyTransport: 0x11, body: body + padding + [0])).isFailure)
        }

        @Test("once a stream is refused, more bytes never make it acceptable (the result does not depend on segmentation)")
        func refusalIsFinal() {
            // "PROXY UNKNOWN a\nb\r\n": refused when the bytes up to the LF arrive first ("LF without CR"),
            // but the whole line in one read is accepted as UNKNOWN (whose rest is ignored). The same
            // bytes then open or close the connection depending on how TCP splits them.
            let bytes = Array("PROXY UNKNOWN a\nb\r\n".utf8)
            let whole = ParseOutcome(bytes)
            let byteByByte = streamingOutcome(bytes, chunkSizes: [1])
            #expect(whole == byteByByte, "whole: \(whole); byte by byte: \(byteByByte)")
        }

        // MARK: Fuzz

        /// Checks the parser's contract on one input; returns a description of a violation, or nil.
        static func violation(_ bytes: [UInt8]) -> String? {
            let outcome = ParseOutcome(bytes)
            if ParseOutcome(bytes) != outcome { return "not deterministic" }
            switch outcome {
            case .parsed(let header, let length):
                if length <= 0 || length > bytes.count { return "length \(length) for \(bytes.count) input bytes" }
                // The header alone gives the same answer; what follows it does not matter.
                if ParseOutcome(Array(bytes[..<length])) != outcome { return "the header alone parses differently" }
                if ParseOutcome(Array(bytes[..<length]) + [0x41, 0x0D, 0x0A]) != outcome { return "trailing bytes change the result" }
                if case .proxied(let source, let destination) = header {
                    switch (source, destination) {
                    case (.v4, .v4), (.v6, .v6): break
                    default: return "mixed address families \(source) \(destination)"
                    }
                }
            case .needsMore:
                if bytes.count >= ProxyHeaderParser.v2MaxLength { return "needs more after \(bytes.count) bytes" }
            case .failed:
                break
            }
            return nil
        }

        @Test("fuzz: 20,000 random byte strings up to 300 bytes never crash and keep the contract")
        func fuzzRandom() {
            var random = SeededGenerator(seed: 0xFE77_2026)
            var problems: [String] = []
            var counts = (parsed: 0, needsMore: 0, failed: 0)
            // Random starts that reach the interesting code: pure noise, the v2 signature, "PROXY ".
            let starts: [[UInt8]] = [[], PROXYBytes.v2Signature, Array("PROXY ".utf8), Array("PROXY TCP4 ".utf8), PROXYBytes.v2Signature + [0x21]]
            for iteration in 0..<20_000 {
                let start = starts[Int.random(in: 0..<starts.count, using: &random)]
                let count = Int.random(in: 0...300, using: &random)
                var bytes = start
                for _ in 0..<count {
                    // Mostly text-ish bytes after "PROXY ", so lines and CRLFs turn up.
                    if start.first == 0x50, Bool.random(using: &random) {
                        bytes.append(Array("0123456789. :abcdefTCPUNKOWN\r\n".utf8).randomElement(using: &random)!)
                    } else {
                        bytes.append(UInt8.random(in: 0...255, using: &random))
                    }
                }
                if start == PROXYBytes.v2Signature + [0x21], bytes.count >= 16 {
                    // Small lengths, so v2 bodies are sometimes complete.
                    bytes[13] = [0x00, 0x11, 0x21, 0x31, 0x12][Int.random(in: 0..<5, using: &random)]
                    bytes[14] = 0
                    bytes[15] = UInt8.random(in: 0...60, using: &random)
                }
                switch ParseOutcome(bytes) {
                case .parsed: counts.parsed += 1
                case .needsMore: counts.needsMore += 1
                case .failed: counts.failed += 1
                }
                if let problem = Self.violation(bytes), problems.count < 10 {
                    problems.append("#\(iteration) \(bytes): \(problem)")
                }
            }
            #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
            // The loop reached all three outcomes (it is not just feeding the first-byte check).
            #expect(counts.parsed > 100, "\(counts)")
            #expect(counts.needsMore > 100, "\(counts)")
            #expect(counts.failed > 1000, "\(counts)")
        }

        @Test("fuzz: random mutations of valid headers never crash and keep the contract")
        func fuzzMutations() {
            var random = SeededGenerator(seed: 0x5EED_0F_C0FFEE)
            var problems: [String] = []
            var stillValid = 0
            let valid = Self.validHeaders
            for iteration in 0..<20_000 {
                let (name, original, _) = valid[Int.random(in: 0..<valid.count, using: &random)]
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    switch Int.random(in: 0..<5, using: &random) {
                    case 0 where !bytes.isEmpty:  // flip a byte
                        bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                    case 1 where !bytes.isEmpty:  // flip a bit
                        bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                    case 2 where !bytes.isEmpty:  // cut
                        bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
                    case 3:  // insert
                        bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
                    default:  // delete one
                        if !bytes.isEmpty { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random)) }
                    }
                }
                if case .parsed = ParseOutcome(bytes) { stillValid += 1 }
                if let problem = Self.violation(bytes), problems.count < 10 {
                    problems.append("#\(iteration) from \(name) \(bytes): \(problem)")
                }
                // A truncated valid header is never refused.
                let cut = Int.random(in: 0..<original.count, using: &random)
                if ParseOutcome(Array(original[..<cut])) != .needsMore, problems.count < 10 {
                    problems.append("#\(iteration) \(name) cut to \(cut) bytes: \(ParseOutcome(Array(original[..<cut])))")
                }
            }
            #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
            #expect(stillValid > 0, "some mutations (of TLVs, ports) stay valid")
        }

        // MARK: Encoding

        @Test("v2Header round trip: what Ferry sends to backends parses back to the same addresses")
        func v2HeaderRoundTrip() throws {
            let allocator = ByteBufferAllocator()
            let pairs: [(SocketAddress, SocketAddress)] = [
                (Self.address("203.0.113.7", 51234), Self.address("127.0.0.1", 6080)),
                (Self.address("0.0.0.0", 0), Self.address("255.255.255.255", 65535)),
                (Self.address("2001:db8::1", 4711), Self.address("::1", 443)),
                (Self.address("fe80::1:2:3:4", 65535), Self.address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1)),
            ]
            for (source, destination) in pairs {
                let header = ProxyHeaderParser.v2Header(source: source, destination: destination, allocator: allocator)
                let bytes = Array(header.readableBytesView)
                #expect(Array(bytes.prefix(12)) == PROXYBytes.v2Signature)
                #expect(bytes[12] == 0x21, "version 2, PROXY")
                let parsed = try #require(try ProxyHeaderParser.parse(bytes))
                #expect(parsed.0 == .proxied(source: source, destination: destination), "\(source) → \(destination)")
                #expect(parsed.1 == bytes.count)
                #expect(bytes.count == (source.protocol == .inet ? 16 + 12 : 16 + 36))
            }
            // Mixed families: the IPv4 side is sent IPv4-mapped, so the client's address is kept.
            let mixed = ProxyHeaderParser.v2Header(source: Self.address("192.0.2.1", 1), destination: Self.address("::1", 2), allocator: allocator)
            #expect(ParseOutcome(Array(mixed.readableBytesView)) == .parsed(.proxied(source: Self.address("::ffff:192.0.2.1", 1), destination: Self.address("::1", 2)), 52))
        }
    }
}
