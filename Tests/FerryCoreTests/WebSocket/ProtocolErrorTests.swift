import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension IntegrationTests {
    /// Client protocol violations, answered with close codes over a real socket.
    @Suite("Protocol errors")
    struct ProtocolErrors {
        /// Expects a close frame with `code`, answers it and hangs up. (How promptly the relay hangs up
        /// by itself is checked separately, in ``failedConnectionIsClosedPromptly()``.)
        static func expectClosed(
            _ client: WSTestClient,
            code: UInt16,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let close = try await client.waitForClose(timeout: .seconds(3))
            #expect(close.code == code, "close \(close)", sourceLocation: sourceLocation)
            try? await client.sendClose(code: code)
            await client.shutdown()
        }

        @Test("an unmasked client frame gets close 1002")
        func unmaskedFrame() async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 1024))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                try await client.sendFrame(opcode: WSFrame.binary, payload: ByteBuffer(string: "naked"), masked: false)
                try await Self.expectClosed(client, code: 1002)
                let report = try await backend.nextSinkReport(timeout: .seconds(3))
                #expect(report.byteCount == 0, "no byte of a rejected frame reaches the backend")
            }
        }

        @Test("invalid UTF-8 in a text message gets close 1007")
        func invalidUTF8() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                try await client.sendFrame(opcode: WSFrame.text, payload: ByteBuffer(bytes: [0x61, 0xC3, 0x28, 0x62]))
                try await Self.expectClosed(client, code: 1007)

                // A text message that ends inside a code point, too.
                let cut = try await WSTestClient.upgrade(relay)
                try await cut.sendFrame(opcode: WSFrame.text, payload: ByteBuffer(bytes: [0x61, 0xE2, 0x82]))
                try await Self.expectClosed(cut, code: 1007)
            }
        }

        @Test("a message over maxMessageSize gets close 1009; one at the limit passes")
        func messageTooLarge() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.maxMessageSize = 1024 }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 11)
                try await client.send(binary: pattern.buffer(at: 0, count: 1024))
                #expect(pattern.matches(try await client.receiveBytes(count: 1024), at: 0))
                try await client.send(binary: pattern.buffer(at: 0, count: 1025))
                let next = try await client.receiveFrame()
                #expect(next.opcode == WSFrame.close, "nothing of the oversized message is echoed; got \(next)")
                #expect(next.closeCode == 1009)
                try? await client.sendClose(code: 1000)
                _ = try await client.waitForDisconnect(timeout: .seconds(4))

                // Fragments count towards one message.
                let fragmented = try await WSTestClient.upgrade(relay)
                try await fragmented.sendFrame(opcode: WSFrame.binary, payload: pattern.buffer(at: 0, count: 600), fin: false)
                try await fragmented.sendFrame(opcode: WSFrame.continuation, payload: pattern.buffer(at: 600, count: 600), fin: true)
                try await Self.expectClosed(fragmented, code: 1009)
            }
        }

        @Test("a broken session does not disturb a concurrent good one")
        func isolation() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let good = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 21)
                let chunk = 8 * 1024
                let rounds = 40
                async let goodRun: Bool = {
                    var allMatched = true
                    for round in 0..<rounds {
                        try await good.send(binary: pattern.buffer(at: round * chunk, count: chunk))
                        let echoed = try await good.receiveBytes(count: chunk)
                        allMatched = allMatched && pattern.matches(echoed, at: round * chunk)
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    return allMatched
                }()
                for violation in 0..<3 {
                    let bad = try await WSTestClient.upgrade(relay)
                    switch violation {
                    case 0:
                        try await bad.sendFrame(opcode: WSFrame.binary, payload: ByteBuffer(string: "x"), masked: false)
                        try await Self.expectClosed(bad, code: 1002)
                    case 1:
                        try await bad.sendFrame(opcode: WSFrame.binary, payload: ByteBuffer(string: "x"), reservedBits: 0x40)
                        try await Self.expectClosed(bad, code: 1002)
                    default:
                        // Garbage that is not even a WebSocket frame header, then an abrupt disconnect.
                        try await bad.sendRaw([0xFF, 0xFF, 0xFF, 0xFF])
                        await bad.shutdown()
                    }
                }
                #expect(try await goodRun, "the good session's echoes stayed intact")
                #expect(good.isActive)
                #expect(try await good.close().code == 1000)
            }
        }

        @Test("framing violations get close 1002", arguments: FramingViolation.allCases)
        func framingViolations(_ violation: FramingViolation) async throws {
            let backend = try await TestBackend.start(.sink(keepAtMost: 1024))
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let payload = ByteBuffer(string: "abc")
                var valid = 0
                switch violation {
                case .continuationWithoutStart:
                    try await client.sendFrame(opcode: WSFrame.continuation, payload: payload)
                case .newMessageInsideFragmented:
                    try await client.sendFrame(opcode: WSFrame.binary, payload: payload, fin: false)
                    valid = 3
                    try await client.sendFrame(opcode: WSFrame.binary, payload: payload)
                case .reservedOpcode:
                    try await client.sendFrame(opcode: 0x3, payload: payload)
                case .reservedControlOpcode:
                    try await client.sendFrame(opcode: 0xB, payload: payload)
                case .fragmentedControlFrame:
                    try await client.sendFrame(opcode: WSFrame.ping, payload: payload, fin: false)
                case .nonMinimalLength:
                    // 16-bit length form carrying 3.
                    var frame = ByteBuffer(bytes: [0x82, 0x80 | 126, 0x00, 0x03, 0, 0, 0, 0])
                    frame.writeBytes([0x61, 0x62, 0x63])
                    try await client.sendRaw(frame)
                case .reservedBit:
                    try await client.sendFrame(opcode: WSFrame.binary, payload: payload, reservedBits: 0x10)
                }
                try await Self.expectClosed(client, code: 1002)
                let report = try await backend.nextSinkReport(timeout: .seconds(3))
                #expect(report.byteCount == valid, "only bytes before the violation reach the backend")
            }
        }

        @Test("close codes: echoed back, none for none, 1002 for a code no peer may send")
        func closeCodes() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let custom = try await WSTestClient.upgrade(relay)
                #expect(try await custom.close(code: 4000, reason: "app done") == WSCloseInfo(code: 4000, reason: ""))
                _ = try await custom.waitForDisconnect()

                let empty = try await WSTestClient.upgrade(relay)
                #expect(try await empty.close(code: nil) == WSCloseInfo(code: nil, reason: ""))
                _ = try await empty.waitForDisconnect()

                let reserved = try await WSTestClient.upgrade(relay)
                #expect(try await reserved.close(code: 1005).code == 1002, "1005 must never be sent in a close frame")
                await reserved.shutdown()

                let oneByte = try await WSTestClient.upgrade(relay)
                try await oneByte.sendFrame(opcode: WSFrame.close, payload: ByteBuffer(bytes: [0x03]))
                try await Self.expectClosed(oneByte, code: 1002)

                let longPing = try await WSTestClient.upgrade(relay)
                try await longPing.sendFrame(opcode: WSFrame.ping, payload: ByteBuffer(repeating: 0x70, count: 126))
                try await Self.expectClosed(longPing, code: 1002)

                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }

        /// RFC 6455 §7.1.7: after failing a connection the server does not wait for a close reply
        /// (it could not read one past the bad frame); it closes the TCP connection at once, so the
        /// session slot is freed long before closeTimeout.
        @Test("after a protocol error the relay hangs up promptly without waiting for a reply")
        func failedConnectionIsClosedPromptly() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let limits = Relay.testLimits { $0.closeTimeout = .seconds(3) }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)], limits: limits) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let clock = ContinuousClock()
                let sent = clock.now
                try await client.sendFrame(opcode: WSFrame.binary, payload: ByteBuffer(string: "x"), masked: false)
                let close = try await client.waitForClose()
                #expect(close.code == 1002)
                _ = try await client.waitForDisconnect(timeout: .seconds(5))
                let elapsed = clock.now - sent
                #expect(elapsed < .milliseconds(1000), "the relay hung up \(elapsed) after the bad frame")
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 })
            }
        }
    }
}

enum FramingViolation: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case continuationWithoutStart
    case newMessageInsideFragmented
    case reservedOpcode
    case reservedControlOpcode
    case fragmentedControlFrame
    case nonMinimalLength
    case reservedBit

    var testDescription: String { self.rawValue }
}
