import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import FerryCore

/// One client session on two `EmbeddedChannel`s sharing one embedded loop, wired as
/// ``ConnectSession`` wires them after the 101: the WebSocket side with the masking encoder, the
/// client-role decoder and its handler, the local side with its handler. A read counter at the head
/// of each pipeline sees only the reads the session let through.
private final class ClientSession {
    let loop = EmbeddedEventLoop()
    let relay: EmbeddedChannel
    let local: EmbeddedChannel
    let relayReads = EmbeddedReadCounter()
    let localReads = EmbeddedReadCounter()
    let parts: ClientSessionParts

    init(pingInterval: TimeAmount = .zero) throws {
        var configuration = ConnectConfiguration(url: WebSocketURL(secure: false, host: "relay.test", port: 80))
        configuration.pingInterval = pingInterval
        configuration.pingTimeout = .seconds(10)
        configuration.closeTimeout = .seconds(5)
        self.relay = EmbeddedChannel(loop: self.loop)
        self.local = EmbeddedChannel(loop: self.loop)
        self.relay.connect(to: try SocketAddress(ipAddress: "192.0.2.1", port: 80), promise: nil)
        self.local.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5432), promise: nil)
        let box = EndBox()
        self.parts = ClientSessionParts(configuration: configuration) { box.end = $0 }
        self.endBox = box
        try self.relay.pipeline.syncOperations.addHandler(self.relayReads)
        try self.relay.pipeline.syncOperations.addHandlers(self.parts.relayHandlers(pool: nil))
        try self.local.pipeline.syncOperations.addHandlers([self.localReads, self.parts.local])
    }

    /// Where the session's end lands (its callback runs on the loop).
    final class EndBox { var end: SessionEnd? }
    private let endBox: EndBox
    var sessionEnd: SessionEnd? { self.endBox.end }

    /// The relay sends an unmasked frame.
    func relaySends(opcode: UInt8, _ payload: [UInt8]) throws {
        try self.relay.writeInbound(ScriptedWebSocketServer.frame(opcode: opcode, payload: payload))
        self.loop.run()
    }

    /// Every frame written to the relay so far, unmasked by the relay's own (server-role) decoder;
    /// the masking keys as they were on the wire.
    func framesToRelay() throws -> (frames: [(opcode: UInt8, payload: [UInt8])], keys: [[UInt8]]) {
        var frames: [(opcode: UInt8, payload: [UInt8])] = []
        var keys: [[UInt8]] = []
        var parser = WebSocketFrameParser(role: .server)
        var current: (opcode: UInt8, payload: [UInt8])?
        while var bytes = try self.relay.readOutbound(as: ByteBuffer.self) {
            while let event = try parser.next(&bytes) {
                switch event {
                case .header(let header):
                    current = (header.opcode, [])
                    keys.append(header.maskKey.map { Array($0) } ?? [])
                case .payload(let piece, let key, let phase):
                    var unmasked = ByteBuffer()
                    unmasked.writeMasked(piece, key: key!, phase: phase)
                    current?.payload += Array(unmasked.readableBytesView)
                case .frameEnd:
                    if let frame = current { frames.append(frame) }
                    current = nil
                }
            }
        }
        return (frames, keys)
    }

    func localWritten() throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try self.local.readOutbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
        return bytes
    }
}

extension ClientTests {
    @Suite("Unit: the client session on embedded channels")
    struct EmbeddedSessionTests {
        @Test("local bytes go out as binary frames, each masked with its own key, and unmask to the input")
        func masking() throws {
            let session = try ClientSession()
            let chunks = [Array(repeating: UInt8(0x41), count: 1000), Array(0..<200).map { UInt8($0) }, [], Array(repeating: 7, count: 70_000)]
            for chunk in chunks {
                try session.local.writeInbound(ByteBuffer(bytes: chunk))
                session.local.pipeline.fireChannelReadComplete()
            }
            session.loop.run()
            let (frames, keys) = try session.framesToRelay()
            #expect(frames.map(\.opcode) == [0x2, 0x2, 0x2, 0x2])
            #expect(frames.map(\.payload) == chunks)
            #expect(keys.allSatisfy { $0.count == 4 }, "every client frame is masked")
            #expect(Set(keys).count == keys.count, "a fresh key per frame")
        }

        @Test("the relay's frames reach the local side as bytes; a ping is answered with a masked pong")
        func inboundAndPing() throws {
            let session = try ClientSession()
            try session.relaySends(opcode: 0x2, Array("hello ".utf8))
            try session.relaySends(opcode: 0x1, Array("world".utf8))
            #expect(try session.localWritten() == Array("hello world".utf8))
            try session.relaySends(opcode: 0x9, Array("are you there".utf8))
            let (frames, keys) = try session.framesToRelay()
            #expect(frames.count == 1)
            #expect(frames.first?.opcode == 0xA)
            #expect(frames.first?.payload == Array("are you there".utf8))
            #expect(keys.first?.count == 4)
        }

        @Test("the relay closes with 1000: same code back, the local side closed after its bytes, the end reported")
        func relayCloses() throws {
            let session = try ClientSession()
            try session.relaySends(opcode: 0x2, Array("last words".utf8))
            try session.relaySends(opcode: 0x8, [0x03, 0xE8] + Array("bye".utf8))
            #expect(try session.localWritten() == Array("last words".utf8))
            #expect(!session.local.isActive, "the local side is closed once its bytes are written")
            let (frames, _) = try session.framesToRelay()
            #expect(frames.map(\.opcode) == [0x8])
            #expect(frames.first?.payload == [0x03, 0xE8])
            // The relay hangs up first (RFC 6455 §7.1.1).
            try session.relay.close().wait()
            session.loop.run()
            #expect(session.sessionEnd?.cause == .closed(code: 1000, reason: "bye"))
            #expect(session.sessionEnd?.isNormal == true)
            #expect(session.sessionEnd?.bytesReceived == 10)
        }

        @Test("local EOF: what was read goes first, then close 1000; the relay's answer ends the session")
        func localEOF() throws {
            let session = try ClientSession()
            try session.local.writeInbound(ByteBuffer(string: "request"))
            session.local.pipeline.fireChannelReadComplete()
            session.local.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            session.loop.run()
            let (frames, _) = try session.framesToRelay()
            #expect(frames.map(\.opcode) == [0x2, 0x8])
            #expect(frames.last?.payload == [0x03, 0xE8])
            // Bytes the relay still sends before its close reach the local side.
            try session.relaySends(opcode: 0x2, Array("reply".utf8))
            #expect(try session.localWritten() == Array("reply".utf8))
            try session.relaySends(opcode: 0x8, [0x03, 0xE8])
            #expect(!session.relay.isActive, "the close handshake is over: the connection is closed")
            session.loop.run()
            #expect(session.sessionEnd?.cause == .closed(code: 1000, reason: ""))
            #expect(session.sessionEnd?.closedLocallyFirst == true)
            #expect(session.sessionEnd?.bytesSent == 7)
        }

        @Test("a masked frame from the relay is a protocol error: close 1002, session lost")
        func maskedServerFrame() throws {
            let session = try ClientSession()
            try session.relay.writeInbound(ScriptedWebSocketServer.frame(opcode: 0x2, payload: [1, 2, 3], maskKey: [9, 9, 9, 9]))
            session.loop.run()
            let (frames, _) = try session.framesToRelay()
            #expect(frames.map(\.opcode) == [0x8])
            #expect(frames.first.map { Array($0.payload.prefix(2)) } == [0x03, 0xEA])
            #expect(try session.localWritten().isEmpty)
            #expect(!session.relay.isActive)
            #expect(!session.local.isActive)
            if case .lost(let why)? = session.sessionEnd?.cause {
                #expect(why.contains("broke the WebSocket protocol"))
            } else {
                Issue.record("expected a lost session, got \(String(describing: session.sessionEnd))")
            }
        }

        @Test("backpressure: local reads wait while the WebSocket channel is not writable, and the other way round")
        func backpressure() throws {
            let session = try ClientSession()
            session.local.pipeline.read()
            #expect(session.localReads.reads == 1)
            session.relay.isWritable = false
            session.relay.pipeline.syncOperations.fireChannelWritabilityChanged()
            session.local.pipeline.read()
            #expect(session.localReads.reads == 1, "held while the relay cannot take more")
            session.relay.isWritable = true
            session.relay.pipeline.syncOperations.fireChannelWritabilityChanged()
            #expect(session.localReads.reads == 2, "the held read goes once it can")

            session.relay.pipeline.read()
            let before = session.relayReads.reads
            session.local.isWritable = false
            session.local.pipeline.syncOperations.fireChannelWritabilityChanged()
            session.relay.pipeline.read()
            #expect(session.relayReads.reads == before, "held while the local side cannot take more")
            session.local.isWritable = true
            session.local.pipeline.syncOperations.fireChannelWritabilityChanged()
            #expect(session.relayReads.reads == before + 1)

            // A full upload queue does not stop reading the relay: the relay holds its reads while its
            // queue to us is full, so if both held, a busy echo would stop both ends for good.
            session.relay.isWritable = false
            session.relay.pipeline.syncOperations.fireChannelWritabilityChanged()
            let whileFull = session.relayReads.reads
            session.relay.pipeline.read()
            #expect(session.relayReads.reads == whileFull + 1, "the relay is read while our upload waits")
        }
    }
}
