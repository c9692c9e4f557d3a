import NIOCore
import Testing

@testable import FerryCore

/// The RESP reply parser and command encoder, without a network: every type, every split point,
/// the limits and malformed input.
@Suite("RESP")
struct RESPParserTests {
    /// Parses `text` fed in pieces cut at `cuts`; the values read, or the error.
    static func parse(_ bytes: [UInt8], cuts: [Int] = [], limits: RESPReplyParser.Limits = .init()) -> Result<[RESPValue], RESPReplyParser.Failure> {
        var parser = RESPReplyParser(limits: limits)
        var values: [RESPValue] = []
        var start = 0
        for end in cuts.filter({ $0 > 0 && $0 < bytes.count }).sorted() + [bytes.count] {
            var buffer = ByteBuffer(bytes: bytes[start..<end])
            start = end
            do {
                while let value = try parser.next(&buffer) { values.append(value) }
            } catch {
                return .failure(error)
            }
        }
        return .success(values)
    }

    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-WRONGPASS invalid username-password pair\r\n", .error("WRONGPASS invalid username-password pair")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(Int64.max)),
        ("$9\r\n127.0.0.1\r\n", bulk("127.0.0.1")),
        ("$0\r\n\r\n", bulk("")),
        ("$4\r\na\r\nb\r\n", bulk("a\r\nb")),
        ("$-1\r\n", .bulkString(nil)),
        ("*-1\r\n", .array(nil)),
        ("*0\r\n", .array([])),
        ("*3\r\n$10\r\npsubscribe\r\n$3\r\nns*\r\n:1\r\n", .array([bulk("psubscribe"), bulk("ns*"), .integer(1)])),
        ("*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$18\r\n__keyspace@0__:a:b\r\n$3\r\ndel\r\n", .array([bulk("pmessage"), bulk("*"), bulk("__keyspace@0__:a:b"), bulk("del")])),
        ("*2\r\n*1\r\n:1\r\n*2\r\n$-1\r\n*0\r\n", .array([.array([.integer(1)]), .array([.bulkString(nil), .array([])])])),
    ]

    @Test("every type, read whole")
    func everyType() {
        for (text, value) in Self.samples {
            #expect(Self.parse(Array(text.utf8)) == .success([value]), "\(text.debugDescription)")
        }
    }

    @Test("every reply cut at every byte, and cut into single bytes, reads the same")
    func everySplit() {
        let stream = Self.samples.map(\.0).joined()
        let expected = Self.samples.map(\.1)
        let bytes = Array(stream.utf8)
        for cut in 1..<bytes.count {
            #expect(Self.parse(bytes, cuts: [cut]) == .success(expected), "cut at \(cut)")
        }
        #expect(Self.parse(bytes, cuts: Array(1..<bytes.count)) == .success(expected))
    }

    @Test("pipelined replies in one read come out one at a time, in order; a partial one waits")
    func pipelined() throws {
        var parser = RESPReplyParser()
        var buffer = ByteBuffer(string: "+OK\r\n$-1\r\n$3\r\nab")
        #expect(try parser.next(&buffer) == .simpleString("OK"))
        #expect(parser.isIdle)
        #expect(try parser.next(&buffer) == .bulkString(nil))
        #expect(try parser.next(&buffer) == nil)
        #expect(!parser.isIdle)
        var rest = ByteBuffer(string: "c\r\n")
        #expect(try parser.next(&rest) == Self.bulk("abc"))
        #expect(parser.isIdle)
    }

    @Test("malformed input is an error at the byte that breaks the rule")
    func malformed() {
        let cases: [(String, RESPReplyParser.Failure)] = [
            ("!oops\r\n", .unknownType(UInt8(ascii: "!"))),
            ("OK\r\n", .unknownType(UInt8(ascii: "O"))),
            ("+OK\n", .missingCRLF),
            ("+OK\rX", .missingCRLF),
            (":12a\r\n", .badNumber),
            (":\r\n", .badNumber),
            (":-\r\n", .badNumber),
            (":1-2\r\n", .badNumber),
            (":99999999999999999999\r\n", .badNumber),
            (":123456789012345678901\r\n", .badNumber),
            ("$-2\r\n", .bulkTooLong(-2)),
            ("$3\r\nabcX", .missingCRLF),
            ("$3\r\nabc\rX", .missingCRLF),
            ("*-2\r\n", .arrayTooLong(-2)),
            ("$ 3\r\n", .badNumber),
        ]
        for (text, failure) in cases {
            #expect(Self.parse(Array(text.utf8)) == .failure(failure), "\(text.debugDescription)")
        }
    }

    @Test("limits: bulk length, array count, nesting depth and line length")
    func limits() {
        var limits = RESPReplyParser.Limits()
        limits.maxBulkLength = 8
        limits.maxArrayCount = 3
        limits.maxDepth = 2
        limits.maxLineLength = 10
        #expect(Self.parse(Array("$8\r\n12345678\r\n".utf8), limits: limits) == .success([Self.bulk("12345678")]))
        #expect(Self.parse(Array("$9\r\n".utf8), limits: limits) == .failure(.bulkTooLong(9)))
        #expect(Self.parse(Array("*3\r\n:1\r\n:2\r\n:3\r\n".utf8), limits: limits) == .success([.array([.integer(1), .integer(2), .integer(3)])]))
        #expect(Self.parse(Array("*4\r\n".utf8), limits: limits) == .failure(.arrayTooLong(4)))
        #expect(Self.parse(Array("*1\r\n*1\r\n:1\r\n".utf8), limits: limits) == .success([.array([.array([.integer(1)])])]))
        #expect(Self.parse(Array("*1\r\n*1\r\n*1\r\n".utf8), limits: limits) == .failure(.tooDeep))
        #expect(Self.parse(Array("+0123456789\r\n".utf8), limits: limits) == .success([.simpleString("0123456789")]))
        #expect(Self.parse(Array("-0123456789A".utf8), limits: limits) == .failure(.lineTooLong))
        // The defaults: 512 KiB of bulk is read, a byte more is refused before any data arrives.
        let big = 512 * 1024
        #expect(Self.parse(Array("$\(big + 1)\r\n".utf8)) == .failure(.bulkTooLong(Int64(big + 1))))
        let value = Self.parse(Array("$\(big)\r\n".utf8) + [UInt8](repeating: 0x61, count: big) + Array("\r\n".utf8), cuts: [100, 70_000])
        #expect((try? value.get())?.first == .bulkString(ByteBuffer(repeating: 0x61, count: big)))
    }

    @Test("commands are arrays of bulk strings; any byte travels as data")
    func encoder() {
        var buffer = ByteBuffer()
        RESPCommand("GET", "ns:tok en\r\n").encode(into: &buffer)
        #expect(String(buffer: buffer) == "*2\r\n$3\r\nGET\r\n$11\r\nns:tok en\r\n\r\n")
        buffer.clear()
        RESPCommand("PING").encode(into: &buffer)
        #expect(String(buffer: buffer) == "*1\r\n$4\r\nPING\r\n")
        buffer.clear()
        RESPCommand("SET", "ключ", "").encode(into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$8\r\nключ\r\n$0\r\n\r\n")
        #expect(RESPCommand("auth", "secret").name == "AUTH")
    }

    @Test("published messages are told apart from replies")
    func published() {
        #expect(RESPChannelHandler.isPublished(.array([Self.bulk("pmessage"), Self.bulk("*"), Self.bulk("c"), Self.bulk("del")])))
        #expect(RESPChannelHandler.isPublished(.array([Self.bulk("message"), Self.bulk("c"), Self.bulk("x")])))
        #expect(!RESPChannelHandler.isPublished(.array([Self.bulk("psubscribe"), Self.bulk("*"), .integer(1)])))
        #expect(!RESPChannelHandler.isPublished(Self.bulk("pmessage")))
    }
}
