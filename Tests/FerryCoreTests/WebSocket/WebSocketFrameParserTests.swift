import NIOCore
import NIOWebSocket
import Testing

@testable import FerryCore

@Suite("Unit: WebSocket frame parser")
struct WebSocketFrameParserUnitTests {
    private static let key: [UInt8] = [0x11, 0x82, 0x43, 0xF4]

    // MARK: Masking keys

    @Test(
        "a masking key made without allocating equals NIO's from the same bytes",
        arguments: [[0, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [0x11, 0x82, 0x43, 0xF4], [0x80, 0, 0, 1], [1, 2, 3, 4]] as [[UInt8]]
    )
    func maskKeyBytes(key: [UInt8]) {
        #expect(MaskKeyBytes.key(key[0], key[1], key[2], key[3]) == WebSocketMaskingKey(key))
        #expect(Array(MaskKeyBytes.key(key[0], key[1], key[2], key[3])) == key)
    }

    // MARK: Lengths

    @Test(
        "payload length encodings, server role (masked)",
        arguments: [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000]
    )
    func serverLengths(length: Int) throws {
        let payload = parserPattern(length)
        let bytes = parserFrame(opcode: 0x2, payload: payload, mask: Self.key)
        var parser = WebSocketFrameParser(role: .server)
        var input = ByteBuffer(bytes: bytes)
        let events = try parseAll(&parser, &input)

        #expect(input.readableBytes == 0)
        let expectedHeader = WebSocketFrameHeader(
            fin: true,
            opcode: 0x2,
            maskKey: WebSocketMaskingKey(Self.key),
            payloadLength: UInt64(length)
        )
        #expect(events.first == .header(expectedHeader))
        #expect(events.last == .frameEnd)
        #expect(unmaskedPayload(events) == payload)
        // The whole frame in one buffer gives one payload piece (none for an empty payload).
        #expect(events.count == (length == 0 ? 2 : 3))
    }

    @Test("payload length encodings, client role (unmasked)", arguments: [0, 5, 125, 126, 65535, 65536])
    func clientLengths(length: Int) throws {
        let payload = parserPattern(length)
        var parser = WebSocketFrameParser(role: .client)
        var input = ByteBuffer(bytes: parserFrame(opcode: 0x1, payload: payload, mask: nil))
        let events = try parseAll(&parser, &input)
        #expect(events.first == .header(WebSocketFrameHeader(fin: true, opcode: 0x1, maskKey: nil, payloadLength: UInt64(length))))
        #expect(events.last == .frameEnd)
        #expect(unmaskedPayload(events) == payload)
        for case .payload(_, let phase, let masked) in events {
            #expect(phase == 0)
            #expect(!masked)
        }
    }

    @Test("the header's length field takes 0, 2 or 8 extra bytes")
    func headerSizes() throws {
        for (length, headerSize) in [(125, 2 + 4), (126, 4 + 4), (65535, 4 + 4), (65536, 10 + 4)] {
            let bytes = parserFrame(opcode: 0x2, payload: parserPattern(length), mask: Self.key)
            #expect(bytes.count == headerSize + length)
            // The header is reported only once all its bytes are there.
            var parser = WebSocketFrameParser(role: .server)
            var partial = ByteBuffer(bytes: bytes[..<(headerSize - 1)])
            #expect(try parser.next(&partial) == nil)
            var rest = ByteBuffer(bytes: bytes[(headerSize - 1)...])
            let event = try parser.next(&rest)
            guard case .header(let header) = event else {
                Issue.record("expected a header, got \(String(describing: event))")
                continue
            }
            #expect(header.payloadLength == UInt64(length))
            #expect(rest.readableBytes == length, "the header must consume exactly its own bytes")
        }
    }

    // MARK: Streaming

    @Test("a frame delivered one byte at a time streams its payload", arguments: [5, 300, 70000])
    func oneByteAtATime(length: Int) throws {
        let payload = parserPattern(length)
        let bytes = parserFrame(opcode: 0x2, payload: payload, mask: Self.key)
        let headerSize = bytes.count - length
        var parser = WebSocketFrameParser(role: .server)

        var collected: [UInt8] = []
        var headerAt: Int? = nil
        var frameEndAt: Int? = nil
        var piecesBeforeEnd = 0
        for (index, byte) in bytes.enumerated() {
            var input = ByteBuffer(bytes: [byte])
            while let event = try parser.next(&input) {
                switch event {
                case .header(let header):
                    #expect(headerAt == nil)
                    headerAt = index
                    #expect(header.payloadLength == UInt64(length))
                case .payload(let piece, let maskKey, let phase):
                    #expect(headerAt != nil, "payload before the header")
                    #expect(frameEndAt == nil)
                    #expect(phase == collected.count % 4, "phase must be the payload offset modulo 4")
                    #expect(piece.readableBytes == 1)
                    collected += referenceUnmask(Array(piece.readableBytesView), key: maskKey, phase: phase)
                    if index < bytes.count - 1 { piecesBeforeEnd += 1 }
                case .frameEnd:
                    frameEndAt = index
                }
            }
            #expect(input.readableBytes == 0, "every byte is consumed or stashed")
        }
        #expect(headerAt == headerSize - 1)
        #expect(frameEndAt == bytes.count - 1)
        #expect(piecesBeforeEnd == length - 1, "pieces must arrive before the frame is complete")
        #expect(collected == payload)
    }

    @Test("a frame split at every point into two reads")
    func splitAtEveryPoint() throws {
        let payload = parserPattern(200)
        let bytes = parserFrame(opcode: 0x1, fin: false, payload: payload, mask: Self.key)
            + parserFrame(opcode: 0x0, payload: [1, 2, 3], mask: Self.key)
        for cut in 0...bytes.count {
            var parser = WebSocketFrameParser(role: .server)
            var first = ByteBuffer(bytes: bytes[..<cut])
            var second = ByteBuffer(bytes: bytes[cut...])
            let events = try parseAll(&parser, &first) + parseAll(&parser, &second)
            let headers = events.compactMap { event -> WebSocketFrameHeader? in
                if case .header(let header) = event { return header }
                return nil
            }
            #expect(headers.map(\.opcode) == [0x1, 0x0], "cut \(cut)")
            #expect(headers.map(\.fin) == [false, true], "cut \(cut)")
            #expect(events.filter { $0 == .frameEnd }.count == 2, "cut \(cut)")
            #expect(unmaskedPayload(events) == payload + [1, 2, 3], "cut \(cut)")
        }
    }

    @Test("several frames in one buffer")
    func severalFrames() throws {
        let bytes = parserFrame(opcode: 0x1, fin: false, payload: Array("Hel".utf8), mask: Self.key)
            + parserFrame(opcode: 0x9, payload: Array("ping".utf8), mask: [1, 2, 3, 4])
            + parserFrame(opcode: 0x0, payload: Array("lo".utf8), mask: Self.key)
            + parserFrame(opcode: 0xA, payload: [], mask: [5, 6, 7, 8])
            + parserFrame(opcode: 0x8, payload: [0x03, 0xE8], mask: [9, 9, 9, 9])
        var parser = WebSocketFrameParser(role: .server)
        var input = ByteBuffer(bytes: bytes)
        let events = try parseAll(&parser, &input)
        #expect(input.readableBytes == 0)
        #expect(
            events == [
                .header(.init(fin: false, opcode: 0x1, maskKey: WebSocketMaskingKey(Self.key), payloadLength: 3)),
                .payload(Array("Hel".utf8), phase: 0, masked: true),
                .frameEnd,
                .header(.init(fin: true, opcode: 0x9, maskKey: WebSocketMaskingKey([1, 2, 3, 4]), payloadLength: 4)),
                .payload(Array("ping".utf8), phase: 0, masked: true),
                .frameEnd,
                .header(.init(fin: true, opcode: 0x0, maskKey: WebSocketMaskingKey(Self.key), payloadLength: 2)),
                .payload(Array("lo".utf8), phase: 0, masked: true),
                .frameEnd,
                .header(.init(fin: true, opcode: 0xA, maskKey: WebSocketMaskingKey([5, 6, 7, 8]), payloadLength: 0)),
                .frameEnd,
                .header(.init(fin: true, opcode: 0x8, maskKey: WebSocketMaskingKey([9, 9, 9, 9]), payloadLength: 2)),
                .payload([0x03, 0xE8], phase: 0, masked: true),
                .frameEnd,
            ]
        )
    }

    @Test("a zero-length frame yields header then frameEnd, then needs more input")
    func zeroLength() throws {
        for role in [WebSocketFrameParser.Role.server, .client] {
            for opcode: UInt8 in [0x1, 0x2, 0x8, 0x9, 0xA] {
                var parser = WebSocketFrameParser(role: role)
                var input = ByteBuffer(bytes: parserFrame(opcode: opcode, payload: [], mask: role == .server ? Self.key : nil))
                let first = try parser.next(&input)
                guard case .header(let header) = first else {
                    Issue.record("expected a header, got \(String(describing: first))")
                    continue
                }
                #expect(header.payloadLength == 0)
                #expect(header.opcode == opcode)
                let second = try parser.next(&input)
                guard case .frameEnd = second else {
                    Issue.record("expected frameEnd, got \(String(describing: second))")
                    continue
                }
                #expect(try parser.next(&input) == nil)
                #expect(input.readableBytes == 0)
            }
        }
    }

    @Test("a control frame of exactly 125 bytes is accepted")
    func controlFrameAtLimit() throws {
        var parser = WebSocketFrameParser(role: .server)
        var input = ByteBuffer(bytes: parserFrame(opcode: 0x9, payload: parserPattern(125), mask: Self.key))
        let events = try parseAll(&parser, &input)
        #expect(unmaskedPayload(events) == parserPattern(125))
        #expect(events.last == .frameEnd)
    }

    @Test("reserved bits and the control flag are reported in the header")
    func headerFields() throws {
        let header = WebSocketFrameHeader(fin: true, opcode: 0x9, maskKey: nil, payloadLength: 0)
        #expect(header.isControl)
        #expect(!WebSocketFrameHeader(fin: true, opcode: 0x2, maskKey: nil, payloadLength: 0).isControl)
        #expect(header.reservedBits == 0)
    }

    // MARK: Header rules

    @Test("RSV bits set are rejected", arguments: [0x10, 0x20, 0x40, 0x70] as [UInt8])
    func reservedBits(bits: UInt8) {
        var bytes = parserFrame(opcode: 0x2, payload: [1, 2], mask: Self.key)
        bytes[0] |= bits
        expectProtocolError(role: .server, bytes)
    }

    @Test("reserved opcodes are rejected", arguments: [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] as [UInt8])
    func reservedOpcodes(opcode: UInt8) {
        expectProtocolError(role: .server, parserFrame(opcode: opcode, payload: [1], mask: Self.key))
        expectProtocolError(role: .client, parserFrame(opcode: opcode, payload: [1], mask: nil))
    }

    @Test("fragmented control frames are rejected", arguments: [0x8, 0x9, 0xA] as [UInt8])
    func fragmentedControl(opcode: UInt8) {
        expectProtocolError(role: .server, parserFrame(opcode: opcode, fin: false, payload: [], mask: Self.key))
    }

    @Test("control frames longer than 125 bytes are rejected", arguments: [0x8, 0x9, 0xA] as [UInt8])
    func longControl(opcode: UInt8) {
        expectProtocolError(role: .server, parserFrame(opcode: opcode, payload: parserPattern(126), mask: Self.key))
        expectProtocolError(role: .server, parserFrame(opcode: opcode, payload: parserPattern(65536), mask: Self.key))
        // Rejected as soon as the 2-byte prefix is there, before any length or mask bytes.
        expectProtocolError(role: .server, [0x80 | opcode, 0x80 | 126])
    }

    @Test("an unmasked frame from a client is rejected (server role)")
    func unmaskedFromClient() {
        expectProtocolError(role: .server, parserFrame(opcode: 0x2, payload: [1, 2, 3], mask: nil))
        expectProtocolError(role: .server, parserFrame(opcode: 0x9, payload: [], mask: nil))
    }

    @Test("a masked frame from a server is rejected (client role)")
    func maskedFromServer() {
        expectProtocolError(role: .client, parserFrame(opcode: 0x2, payload: [1, 2, 3], mask: Self.key))
        expectProtocolError(role: .client, parserFrame(opcode: 0xA, payload: [], mask: Self.key))
    }

    @Test("a 16-bit length below 126 is rejected", arguments: [0, 1, 125] as [UInt16])
    func nonMinimal16(length: UInt16) {
        let header: [UInt8] = [0x82, 0x80 | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
        expectProtocolError(role: .server, header + Self.key + parserPattern(Int(length)))
        // Known from the length field alone: no mask bytes needed.
        expectProtocolError(role: .server, header)
    }

    @Test("a 64-bit length at most 0xFFFF is rejected", arguments: [0, 125, 126, 0xFFFF] as [UInt64])
    func nonMinimal64(length: UInt64) {
        let header: [UInt8] = [0x82, 0x80 | 127] + bigEndian(length)
        expectProtocolError(role: .server, header + Self.key)
        expectProtocolError(role: .client, [0x82, 127] + bigEndian(length))
    }

    @Test("a 64-bit length with the most significant bit set is rejected")
    func lengthMSB() {
        for length: UInt64 in [1 << 63, UInt64.max, (1 << 63) | 0x10000] {
            expectProtocolError(role: .server, [0x82, 0x80 | 127] + bigEndian(length) + Self.key)
        }
    }

    @Test("the largest valid 64-bit length is accepted as a header")
    func largestLength() throws {
        var parser = WebSocketFrameParser(role: .server)
        var input = ByteBuffer(bytes: [0x82, 0x80 | 127] + bigEndian(UInt64(Int64.max)) + Self.key + [0xAA])
        let event = try parser.next(&input)
        guard case .header(let header) = event else {
            Issue.record("expected a header, got \(String(describing: event))")
            return
        }
        #expect(header.payloadLength == UInt64(Int64.max))
        guard case .payload(let piece, _, _) = try parser.next(&input) else {
            Issue.record("expected a payload piece")
            return
        }
        #expect(piece.readableBytes == 1)
        #expect(try parser.next(&input) == nil)
    }

    @Test("header errors are found when the header arrives one byte at a time")
    func errorsThroughPartialHeader() {
        let cases: [[UInt8]] = [
            [0x82 | 0x40, 0x81] + Self.key + [0],  // RSV1
            [0x83, 0x81] + Self.key + [0],  // reserved opcode
            [0x09, 0x80] + Self.key,  // fragmented ping
            [0x82, 0x01, 0x00],  // unmasked from client
            [0x82, 0x80 | 126, 0x00, 0x7D] + Self.key,  // non-minimal 16-bit
            [0x82, 0x80 | 127] + bigEndian(0xFFFF) + Self.key,  // non-minimal 64-bit
            [0x82, 0x80 | 127] + bigEndian(1 << 63) + Self.key,  // MSB set
        ]
        for bytes in cases {
            var parser = WebSocketFrameParser(role: .server)
            var thrown: WebSocketProtocolError? = nil
            for byte in bytes {
                var input = ByteBuffer(bytes: [byte])
                do {
                    while try parser.next(&input) != nil {}
                } catch {
                    thrown = error
                    break
                }
            }
            #expect(thrown?.closeCode == 1002, "\(bytes)")
        }
    }

    @Test("an error after a valid frame in the same buffer")
    func errorAfterValidFrame() throws {
        var parser = WebSocketFrameParser(role: .server)
        var input = ByteBuffer(bytes: parserFrame(opcode: 0x2, payload: [1, 2, 3], mask: Self.key) + [0xF2, 0x80] + Self.key)
        #expect(try parser.next(&input) != nil)  // header
        #expect(try parser.next(&input) != nil)  // payload
        #expect(try parser.next(&input) != nil)  // frameEnd
        let error = #expect(throws: WebSocketProtocolError.self) { try parser.next(&input) }
        #expect(error?.closeCode == 1002)
    }
}

// MARK: - Helpers

/// A parser event reduced to comparable values; payloads are unmasked.
private enum ParsedEvent: Equatable {
    case header(WebSocketFrameHeader)
    case payload([UInt8], phase: Int, masked: Bool)
    case frameEnd
}

private func parseAll(_ parser: inout WebSocketFrameParser, _ input: inout ByteBuffer) throws -> [ParsedEvent] {
    var events: [ParsedEvent] = []
    while let event = try parser.next(&input) {
        switch event {
        case .header(let header):
            events.append(.header(header))
        case .payload(let piece, let maskKey, let phase):
            events.append(.payload(referenceUnmask(Array(piece.readableBytesView), key: maskKey, phase: phase), phase: phase, masked: maskKey != nil))
        case .frameEnd:
            events.append(.frameEnd)
        }
    }
    return events
}

private func unmaskedPayload(_ events: [ParsedEvent]) -> [UInt8] {
    var bytes: [UInt8] = []
    for case .payload(let piece, _, _) in events { bytes += piece }
    return bytes
}

private func referenceUnmask(_ bytes: [UInt8], key: WebSocketMaskingKey?, phase: Int) -> [UInt8] {
    guard let key else { return bytes }
    return bytes.enumerated().map { $0.element ^ key[(phase + $0.offset) % 4] }
}

/// Feeds `bytes` in one buffer and expects a 1002 error before the input runs out.
private func expectProtocolError(
    role: WebSocketFrameParser.Role,
    _ bytes: [UInt8],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var parser = WebSocketFrameParser(role: role)
    var input = ByteBuffer(bytes: bytes)
    let error = #expect(throws: WebSocketProtocolError.self, "\(bytes.prefix(16))", sourceLocation: sourceLocation) {
        while try parser.next(&input) != nil {}
    }
    #expect(error?.closeCode == 1002, sourceLocation: sourceLocation)
}

private func bigEndian(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
}

/// Encodes a frame independently of the code under test (the WebSocket test client's encoder).
private func parserFrame(opcode: UInt8, fin: Bool = true, payload: [UInt8], mask: [UInt8]?) -> [UInt8] {
    WSFrameEncoder.bytes(fin: fin, opcode: opcode, payload: payload, maskKey: mask)
}

private func parserPattern(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 8)) }
}
