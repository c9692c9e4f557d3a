import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import FerryCore

/// `WebSocketStreamDecoder` in an `EmbeddedChannel`: masked frames in, `WebSocketInbound` out.
@Suite("Unit: WebSocket stream decoder")
struct WebSocketStreamDecoderUnitTests {
    // MARK: Data

    @Test("binary payloads are forwarded unmasked", arguments: [1, 125, 126, 4099, 65536])
    func binary(length: Int) throws {
        let channel = try decoderChannel()
        let payload = decoderPattern(length)
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, payload)))
        #expect(try readEvents(channel) == [.data(payload)])
    }

    @Test("text payloads are forwarded unmasked")
    func text() throws {
        let channel = try decoderChannel()
        let text = "Grüße, 世界! 🚢"
        try channel.writeInbound(decoderBuffer(wsFrame(.text, Array(text.utf8))))
        #expect(try readEvents(channel) == [.data(Array(text.utf8))])
    }

    @Test("an empty data frame forwards nothing")
    func emptyDataFrame() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [])))
        try channel.writeInbound(decoderBuffer(wsFrame(.text, [])))
        #expect(try readEvents(channel) == [])
        // And the connection still works.
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [7])))
        #expect(try readEvents(channel) == [.data([7])])
    }

    @Test("consecutive data frames in one read are coalesced, in order")
    func coalesced() throws {
        let channel = try decoderChannel()
        let bytes = wsFrame(.binary, [1, 2, 3]) + wsFrame(.text, Array("abc".utf8)) + wsFrame(.binary, [4, 5])
        try channel.writeInbound(decoderBuffer(bytes))
        let events = try readEvents(channel)
        #expect(dataBytes(events) == [1, 2, 3] + Array("abc".utf8) + [4, 5])
        #expect(events.allSatisfy { if case .data = $0 { true } else { false } })
    }

    // MARK: Fragmentation and UTF-8

    @Test("a text message split across fragments inside a multi-byte character is accepted")
    func fragmentedUTF8() throws {
        let text = Array("price: 5€ or ¥7".utf8)
        let euro = text.firstIndex(of: 0xE2)!
        // Cut after the first byte of €, and after the first byte of ¥ (C2 A5).
        let yen = text.firstIndex(of: 0xC2)!
        let frames =
            wsFrame(.text, Array(text[..<(euro + 1)]), fin: false)
            + wsFrame(.continuation, Array(text[(euro + 1)..<(yen + 1)]), fin: false)
            + wsFrame(.continuation, Array(text[(yen + 1)...]), fin: true)

        // All in one read.
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(frames))
        #expect(dataBytes(try readEvents(channel)) == text)

        // One frame per read.
        let separate = try decoderChannel()
        try separate.writeInbound(decoderBuffer(wsFrame(.text, Array(text[..<(euro + 2)]), fin: false)))
        try separate.writeInbound(decoderBuffer(wsFrame(.continuation, Array(text[(euro + 2)...]), fin: true)))
        #expect(dataBytes(try readEvents(separate)) == text)
    }

    @Test("a text message fed one byte at a time is accepted")
    func textOneByteAtATime() throws {
        let text = Array("ä€😀x".utf8)
        let bytes = wsFrame(.text, Array(text[..<3]), fin: false) + wsFrame(.continuation, Array(text[3...]))
        let channel = try decoderChannel()
        for byte in bytes { try channel.writeInbound(decoderBuffer([byte])) }
        #expect(dataBytes(try readEvents(channel)) == text)
    }

    @Test("invalid UTF-8 in a text message closes with 1007")
    func invalidUTF8() throws {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0x80], [0xF4, 0x90, 0x80, 0x80]] {
            let channel = try decoderChannel()
            expectDecoderError(channel, wsFrame(.text, Array("ok ".utf8) + bad + Array(" more".utf8)), closeCode: 1007)
        }
        // Also in a continuation frame of a text message.
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.text, Array("fine".utf8), fin: false)))
        #expect(dataBytes(try readEvents(channel)) == Array("fine".utf8))
        expectDecoderError(channel, wsFrame(.continuation, [0x41, 0xFE]), closeCode: 1007)
    }

    @Test("invalid UTF-8 in a binary message is fine")
    func binaryIsNotValidated() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80])))
        #expect(dataBytes(try readEvents(channel)) == [0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80])
    }

    @Test("a text message ending inside a code point closes with 1007")
    func textEndsMidCodePoint() throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.text, [0x41, 0xE2, 0x82]), closeCode: 1007)

        let fragmented = try decoderChannel()
        try fragmented.writeInbound(decoderBuffer(wsFrame(.text, [0x41, 0xF0], fin: false)))
        try fragmented.writeInbound(decoderBuffer(wsFrame(.continuation, [0x9F, 0x98], fin: false)))
        expectDecoderError(fragmented, wsFrame(.continuation, [], fin: true), closeCode: 1007)
    }

    @Test("a continuation with no message to continue closes with 1002")
    func continuationWithoutStart() throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.continuation, [1, 2, 3]), closeCode: 1002)

        // Also right after a complete message.
        let after = try decoderChannel()
        try after.writeInbound(decoderBuffer(wsFrame(.binary, [1])))
        #expect(dataBytes(try readEvents(after)) == [1])
        expectDecoderError(after, wsFrame(.continuation, [2]), closeCode: 1002)
    }

    @Test("a new data frame inside a fragmented message closes with 1002")
    func newMessageInsideFragmented() throws {
        for opcode in [WSOpcode.binary, .text] {
            let channel = try decoderChannel()
            try channel.writeInbound(decoderBuffer(wsFrame(.text, Array("ab".utf8), fin: false)))
            expectDecoderError(channel, wsFrame(opcode, Array("cd".utf8)), closeCode: 1002)
        }
    }

    @Test("ping, pong and close between fragments, in one read")
    func controlInterleaved() throws {
        let channel = try decoderChannel()
        let bytes =
            wsFrame(.text, Array("ab".utf8), fin: false)
            + wsFrame(.ping, Array("p".utf8))
            + wsFrame(.continuation, Array("cd".utf8), fin: false)
            + wsFrame(.pong, Array("q".utf8))
            + wsFrame(.continuation, Array("ef".utf8), fin: true)
            + wsFrame(.close, closePayload(1000, "bye"))
        try channel.writeInbound(decoderBuffer(bytes))
        #expect(
            try readEvents(channel) == [
                .data(Array("ab".utf8)),
                .ping(Array("p".utf8)),
                .data(Array("cd".utf8)),
                .pong(Array("q".utf8)),
                .data(Array("ef".utf8)),
                .close(1000, "bye"),
            ]
        )
    }

    @Test("ping, pong and close between fragments, one frame per read")
    func controlInterleavedSeparateReads() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [1, 2], fin: false)))
        try channel.writeInbound(decoderBuffer(wsFrame(.ping, [])))
        try channel.writeInbound(decoderBuffer(wsFrame(.continuation, [3], fin: false)))
        try channel.writeInbound(decoderBuffer(wsFrame(.pong, decoderPattern(125))))
        try channel.writeInbound(decoderBuffer(wsFrame(.continuation, [4], fin: true)))
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [5])))
        #expect(
            try readEvents(channel) == [
                .data([1, 2]), .ping([]), .data([3]), .pong(decoderPattern(125)), .data([4]), .data([5]),
            ]
        )
    }

    @Test("a control frame split across reads is still a control frame")
    func controlFrameSplitAcrossReads() throws {
        // Header (with mask key) in one read, payload in the next: what a TCP segment boundary can do.
        for (opcode, payload, expected) in [
            (WSOpcode.ping, Array("ping!".utf8), DecodedEvent.ping(Array("ping!".utf8))),
            (.pong, Array("pong".utf8), .pong(Array("pong".utf8))),
            (.close, closePayload(1001, "going"), .close(1001, "going")),
        ] {
            let channel = try decoderChannel()
            let bytes = wsFrame(opcode, payload)
            try channel.writeInbound(decoderBuffer(Array(bytes[..<6])))
            try channel.writeInbound(decoderBuffer(Array(bytes[6...])))
            let events = try readEvents(channel)
            #expect(events == [expected])
        }
    }

    @Test("a fragmented message with control frames, fed one byte at a time")
    func everythingOneByteAtATime() throws {
        let channel = try decoderChannel()
        let bytes =
            wsFrame(.text, Array("ab".utf8), fin: false)
            + wsFrame(.ping, Array("p".utf8))
            + wsFrame(.continuation, Array("cd".utf8), fin: true)
            + wsFrame(.close, closePayload(1000, ""))
        for byte in bytes { try channel.writeInbound(decoderBuffer([byte])) }
        let events = try readEvents(channel)
        #expect(dataBytes(events) == Array("abcd".utf8))
        #expect(events.filter { if case .data = $0 { false } else { true } } == [.ping(Array("p".utf8)), .close(1000, "")])
    }

    @Test("empty control frames split after the mask key are delivered")
    func emptyControlFramesOneByteAtATime() throws {
        // With no payload the frame ends in the read that completes its header, so this works.
        let channel = try decoderChannel()
        let bytes = wsFrame(.ping, []) + wsFrame(.pong, []) + wsFrame(.close, [])
        for byte in bytes { try channel.writeInbound(decoderBuffer([byte])) }
        #expect(try readEvents(channel) == [.ping([]), .pong([]), .close(nil, "")])
    }

    // MARK: Close payloads

    @Test("a close frame without payload has no code")
    func closeWithoutPayload() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.close, [])))
        #expect(try readEvents(channel) == [.close(nil, "")])
    }

    @Test("a close frame with a 1-byte payload closes with 1002")
    func closeOneByte() throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.close, [0x03]), closeCode: 1002)
    }

    @Test("invalid close codes close with 1002", arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] as [UInt16])
    func invalidCloseCode(code: UInt16) throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.close, closePayload(code, "")), closeCode: 1002)
    }

    @Test("valid close codes are accepted", arguments: [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] as [UInt16])
    func validCloseCode(code: UInt16) throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.close, closePayload(code, "reason ✓"))))
        #expect(try readEvents(channel) == [.close(code, "reason ✓")])
    }

    @Test("a close reason that is not UTF-8 closes with 1002")
    func closeReasonNotUTF8() throws {
        for reason: [UInt8] in [[0xFF], [0x61, 0xE2, 0x82], [0xC0, 0xAF]] {
            let channel = try decoderChannel()
            expectDecoderError(channel, wsFrame(.close, [0x03, 0xE8] + reason), closeCode: 1002)
        }
    }

    @Test("a close reason of the longest allowed size is accepted")
    func longCloseReason() throws {
        let reason = String(repeating: "r", count: 123)
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.close, closePayload(1000, reason))))
        #expect(try readEvents(channel) == [.close(1000, reason)])
    }

    // MARK: Message size

    @Test("a message over --max-message-size closes with 1009")
    func tooLarge() throws {
        let channel = try decoderChannel(maxMessageSize: 10)
        expectDecoderError(channel, wsFrame(.binary, decoderPattern(11)), closeCode: 1009)
        #expect(try readEvents(channel) == [], "nothing of the oversized frame is forwarded")

        // Across fragments: the second frame pushes it over.
        let fragmented = try decoderChannel(maxMessageSize: 10)
        try fragmented.writeInbound(decoderBuffer(wsFrame(.text, Array("123456".utf8), fin: false)))
        #expect(dataBytes(try readEvents(fragmented)) == Array("123456".utf8))
        expectDecoderError(fragmented, wsFrame(.continuation, Array("78901".utf8)), closeCode: 1009)
    }

    @Test("a message of exactly --max-message-size is accepted, and each message starts from zero")
    func exactlyAtLimit() throws {
        let channel = try decoderChannel(maxMessageSize: 10)
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, decoderPattern(10))))
        try channel.writeInbound(decoderBuffer(wsFrame(.text, Array("12345".utf8), fin: false)))
        // Control frames do not count towards the message.
        try channel.writeInbound(decoderBuffer(wsFrame(.ping, decoderPattern(100))))
        try channel.writeInbound(decoderBuffer(wsFrame(.continuation, Array("67890".utf8))))
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, decoderPattern(10))))
        let events = try readEvents(channel)
        #expect(dataBytes(events) == decoderPattern(10) + Array("1234567890".utf8) + decoderPattern(10))
        #expect(events.contains(.ping(decoderPattern(100))))
    }

    @Test("no limit by default")
    func noLimitByDefault() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, decoderPattern(200_000))))
        #expect(dataBytes(try readEvents(channel)) == decoderPattern(200_000))
    }

    // MARK: Streaming

    @Test("a 1 MiB frame fed in 1000-byte chunks streams before it is complete")
    func largeFrameStreams() throws {
        let channel = try decoderChannel()
        let payload = decoderPattern(1 << 20)
        let bytes = wsFrame(.binary, payload)
        var received: [UInt8] = []
        var chunksWithData = 0
        var chunks = 0
        var start = 0
        while start < bytes.count {
            let end = min(start + 1000, bytes.count)
            try channel.writeInbound(decoderBuffer(Array(bytes[start..<end])))
            chunks += 1
            let events = try readEvents(channel)
            #expect(events.count <= 1, "one read gives at most one data event")
            if !events.isEmpty { chunksWithData += 1 }
            received += dataBytes(events)
            // Everything read so far (minus the 14-byte header) has been passed on.
            #expect(received.count == end - (bytes.count - payload.count), "after chunk ending at \(end)")
            start = end
        }
        #expect(chunks == 1049)
        #expect(chunksWithData == chunks, "every chunk's payload bytes must be passed on at once")
        #expect(received == payload)
    }

    @Test("data before a close frame in the same read is delivered before the close")
    func dataBeforeClose() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [1, 2, 3]) + wsFrame(.close, closePayload(1000, "done"))))
        #expect(try readEvents(channel) == [.data([1, 2, 3]), .close(1000, "done")])
    }

    @Test("data before an error in the same read is delivered, then the error")
    func dataBeforeError() throws {
        let channel = try decoderChannel()
        var bad = wsFrame(.binary, [9])
        bad[0] |= 0x40  // RSV1
        expectDecoderError(channel, wsFrame(.binary, [1, 2, 3]) + bad, closeCode: 1002)
        #expect(try readEvents(channel) == [.data([1, 2, 3])])
    }

    @Test("valid text before an invalid byte in the same read is delivered; the invalid piece is not")
    func validTextBeforeInvalidPiece() throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.text, Array("fine".utf8)) + wsFrame(.text, [0x61, 0xFF]), closeCode: 1007)
        #expect(try readEvents(channel) == [.data(Array("fine".utf8))])
    }

    @Test("after an error further input is ignored")
    func ignoredAfterError() throws {
        let channel = try decoderChannel()
        expectDecoderError(channel, wsFrame(.continuation, [1]), closeCode: 1002)
        try channel.writeInbound(decoderBuffer(wsFrame(.binary, [1, 2, 3])))
        try channel.writeInbound(decoderBuffer(wsFrame(.close, closePayload(1000, ""))))
        try channel.writeInbound(decoderBuffer([0xFF, 0xFF, 0xFF]))  // would be another error
        #expect(try readEvents(channel) == [])
        try channel.throwIfErrorCaught()
    }

    // MARK: Roles

    @Test("server role rejects unmasked frames, client role rejects masked ones")
    func roles() throws {
        let server = try decoderChannel()
        expectDecoderError(server, wsFrame(.binary, [1], mask: nil), closeCode: 1002)

        let client = try decoderChannel(role: .client)
        try client.writeInbound(decoderBuffer(wsFrame(.binary, [1, 2], mask: nil) + wsFrame(.ping, [3], mask: nil)))
        #expect(try readEvents(client) == [.data([1, 2]), .ping([3])])
        expectDecoderError(client, wsFrame(.binary, [1]), closeCode: 1002)
    }

    @Test("header rule violations surface as 1002 from the decoder")
    func headerRules() throws {
        var rsv = wsFrame(.binary, [1])
        rsv[0] |= 0x10
        let cases: [[UInt8]] = [
            rsv,
            wsFrame(.raw(0x3), [1]),
            wsFrame(.raw(0xB), [1]),
            wsFrame(.ping, [], fin: false),
            wsFrame(.ping, decoderPattern(126)),
        ]
        for bytes in cases {
            let channel = try decoderChannel()
            expectDecoderError(channel, bytes, closeCode: 1002)
        }
    }
}

// MARK: - Helpers

private enum WSOpcode {
    case continuation, text, binary, close, ping, pong
    case raw(UInt8)

    var value: UInt8 {
        switch self {
        case .continuation: 0x0
        case .text: 0x1
        case .binary: 0x2
        case .close: 0x8
        case .ping: 0x9
        case .pong: 0xA
        case .raw(let value): value
        }
    }
}

/// `WebSocketInbound` reduced to comparable values.
private enum DecodedEvent: Equatable, CustomStringConvertible {
    case data([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, String)

    var description: String {
        switch self {
        case .data(let bytes): "data(\(bytes.count) bytes: \(bytes.prefix(16)))"
        case .ping(let bytes): "ping(\(bytes))"
        case .pong(let bytes): "pong(\(bytes))"
        case .close(let code, let reason): "close(\(code.map(String.init) ?? "nil"), \(reason))"
        }
    }
}

private let decoderMaskKey: [UInt8] = [0xA1, 0x07, 0x5C, 0xE3]

/// Encodes a frame independently of the code under test (the WebSocket test client's encoder).
private func wsFrame(_ opcode: WSOpcode, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = decoderMaskKey) -> [UInt8] {
    WSFrameEncoder.bytes(fin: fin, opcode: opcode.value, payload: payload, maskKey: mask)
}

private func closePayload(_ code: UInt16, _ reason: String) -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
}

private func decoderPattern(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ ($0 >> 9)) }
}

private func decoderBuffer(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

private func decoderChannel(role: WebSocketFrameParser.Role = .server, maxMessageSize: Int = 0) throws -> EmbeddedChannel {
    EmbeddedChannel(handler: WebSocketStreamDecoder(role: role, maxMessageSize: maxMessageSize))
}

private func readEvents(_ channel: EmbeddedChannel) throws -> [DecodedEvent] {
    var events: [DecodedEvent] = []
    while let inbound = try channel.readInbound(as: WebSocketInbound.self) {
        switch inbound {
        case .data(let buffer): events.append(.data(Array(buffer.readableBytesView)))
        case .ping(let buffer): events.append(.ping(Array(buffer.readableBytesView)))
        case .pong(let buffer): events.append(.pong(Array(buffer.readableBytesView)))
        case .close(let code, let reason): events.append(.close(code, reason))
        }
    }
    return events
}

private func dataBytes(_ events: [DecodedEvent]) -> [UInt8] {
    var bytes: [UInt8] = []
    for case .data(let piece) in events { bytes += piece }
    return bytes
}

/// Writes `bytes` and expects the decoder to fire a `WebSocketProtocolError` with `closeCode`.
private func expectDecoderError(
    _ channel: EmbeddedChannel,
    _ bytes: [UInt8],
    closeCode: UInt16,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let error = #expect(throws: WebSocketProtocolError.self, sourceLocation: sourceLocation) {
        try channel.writeInbound(decoderBuffer(bytes))
    }
    #expect(error?.closeCode == closeCode, "\(String(describing: error))", sourceLocation: sourceLocation)
}
