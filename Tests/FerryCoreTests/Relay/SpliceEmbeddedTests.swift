import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import FerryCore

/// One spliced session on two `EmbeddedChannel`s sharing one embedded loop: the client side with the
/// frame encoder, Ferry's frame decoder and the session handler (as the upgrade installs them), the
/// backend side with its handler, joined by a ``SessionAssembly`` whose slot comes from a registry.
/// A read counter sits at the head of each pipeline, so it sees only the reads the relay let through.
private final class SplicedSession {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let backend: EmbeddedChannel
    let clientReads = EmbeddedReadCounter()
    let backendReads = EmbeddedReadCounter()
    let registry = SessionRegistry(maxConnections: 4)
    let session: SessionAssembly
    let limits: Limits

    init() throws {
        var limits = Limits()
        limits.pingInterval = .zero
        limits.idleTimeout = .zero
        limits.closeTimeout = .seconds(5)
        self.limits = limits
        self.client = EmbeddedChannel(loop: self.loop)
        self.backend = EmbeddedChannel(loop: self.loop)
        self.client.connect(to: try SocketAddress(ipAddress: "203.0.113.7", port: 51234), promise: nil)
        self.backend.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5900), promise: nil)

        let slot = try self.registry.reserve(address: "203.0.113.7").get()
        self.session = SessionAssembly(
            SessionAssembly.Description(client: "203.0.113.7:51234", via: nil, route: "/ws", target: "127.0.0.1:5900", tokenFingerprint: nil, expiresAt: nil),
            slot: slot,
            started: .now(),
            shared: SessionAssembly.Shared(
                registry: self.registry,
                limits: limits,
                metrics: FerryMetrics(),
                accessLogger: EmbeddedWire.logger,
                recording: nil
            ),
            logger: EmbeddedWire.logger,
            eventLoop: self.loop
        )
        try self.backend.pipeline.syncOperations.addHandlers([self.backendReads, self.session.backendHandler])
        try self.client.pipeline.syncOperations.addHandlers([
            self.clientReads,
            WebSocketFrameEncoder(),
            WebSocketStreamDecoder(role: .server, maxMessageSize: limits.maxMessageSize, pool: nil),
            self.session.clientHandler,
        ])
    }

    func clientSends(_ buffer: ByteBuffer) throws {
        try self.client.writeInbound(buffer)
        self.loop.run()
    }

    func backendSends(_ bytes: [UInt8]) throws {
        try self.backend.writeInbound(ByteBuffer(bytes: bytes))
        self.loop.run()
    }

    func setWritable(_ channel: EmbeddedChannel, _ writable: Bool) {
        channel.isWritable = writable
        channel.pipeline.syncOperations.fireChannelWritabilityChanged()
        self.loop.run()
    }
}

private struct BackendBroke: Error {}

@Suite("Splice on EmbeddedChannel")
struct SpliceEmbeddedTests {
    // MARK: Data both ways

    @Test("a masked client binary frame reaches the backend as raw bytes")
    func clientFrameReachesBackend() throws {
        let s = try SplicedSession()
        let small = Array("hello".utf8)
        let large = (0..<300).map { UInt8($0 % 251) }  // a 16-bit length
        var both = EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: small)
        var second = EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: large)
        both.writeBuffer(&second)
        try s.clientSends(both)

        #expect(try EmbeddedWire.outboundBytes(s.backend) == small + large)
        #expect(try EmbeddedWire.outboundFrames(s.client).isEmpty)
        #expect(s.registry.count == 1)
    }

    @Test("a fragmented text message reaches the backend as its payload bytes, boundaries dropped")
    func fragmentedMessageReachesBackend() throws {
        let s = try SplicedSession()
        var frames = EmbeddedWire.clientFrame(opcode: 0x1, payload: Array("abc".utf8), fin: false)
        var tail = EmbeddedWire.clientFrame(opcode: 0x0, payload: Array("def".utf8), fin: true)
        frames.writeBuffer(&tail)
        try s.clientSends(frames)
        #expect(try EmbeddedWire.outboundBytes(s.backend) == Array("abcdef".utf8))
    }

    @Test("backend bytes reach the client as one unmasked binary frame per read")
    func backendBytesReachClient() throws {
        let s = try SplicedSession()
        try s.backendSends(Array("RFB 003.008\n".utf8))
        #expect(try EmbeddedWire.outboundFrames(s.client) == [EmbeddedFrame(fin: true, opcode: EmbeddedFrame.binary, payload: Array("RFB 003.008\n".utf8))])
        #expect(try EmbeddedWire.outboundBytes(s.backend).isEmpty)
    }

    @Test("client data is flushed to the backend at the client's read-complete, not before")
    func clientDataFlushedAtReadComplete() throws {
        let s = try SplicedSession()
        s.client.pipeline.syncOperations.fireChannelRead(NIOAny(EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: [1, 2, 3])))
        #expect(try EmbeddedWire.outboundBytes(s.backend).isEmpty)
        s.client.pipeline.syncOperations.fireChannelReadComplete()
        #expect(try EmbeddedWire.outboundBytes(s.backend) == [1, 2, 3])
    }

    // MARK: Backpressure

    @Test("an unwritable backend holds back the client's read() until it is writable again")
    func backendBackpressureHoldsClientReads() throws {
        let s = try SplicedSession()
        s.client.read()
        #expect(s.clientReads.reads == 1)

        s.setWritable(s.backend, false)
        s.client.read()
        s.client.read()
        #expect(s.clientReads.reads == 1, "the client's read() must wait while the backend cannot take more")
        // The backend's own reads do not depend on its writability, only on the client's.
        s.backend.read()
        #expect(s.backendReads.reads == 1)

        s.setWritable(s.backend, true)
        #expect(s.clientReads.reads == 2, "the held read is issued (once) when the backend drains")
        s.client.read()
        #expect(s.clientReads.reads == 3)
    }

    @Test("an unwritable client holds back the backend's read() (and its own) until it is writable again")
    func clientBackpressureHoldsBackendReads() throws {
        let s = try SplicedSession()
        s.backend.read()
        #expect(s.backendReads.reads == 1)

        s.setWritable(s.client, false)
        s.backend.read()
        #expect(s.backendReads.reads == 1, "the backend's read() must wait while the client cannot take more")
        // A client that does not read its own channel is not read either (its pings would queue pongs).
        s.client.read()
        #expect(s.clientReads.reads == 0)

        s.setWritable(s.client, true)
        #expect(s.backendReads.reads == 2)
        #expect(s.clientReads.reads == 1)
    }

    @Test("reads held on both sides: each resumes only when what it waits on is writable")
    func bothSidesHeld() throws {
        let s = try SplicedSession()
        s.setWritable(s.backend, false)
        s.setWritable(s.client, false)
        s.client.read()
        s.backend.read()
        #expect(s.clientReads.reads == 0)
        #expect(s.backendReads.reads == 0)

        // The client drains: the backend may read again, but the client still waits on the backend.
        s.setWritable(s.client, true)
        #expect(s.backendReads.reads == 1)
        #expect(s.clientReads.reads == 0)

        s.setWritable(s.backend, true)
        #expect(s.clientReads.reads == 1)
    }

    // MARK: Endings

    @Test("client close first: data before it reaches the backend, the backend is closed, the client gets the echo")
    func clientClosesFirst() throws {
        let s = try SplicedSession()
        // Data and close in one read: the data is written but not yet flushed when the close arrives.
        var inbound = EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: Array("bye".utf8))
        var close = EmbeddedWire.clientClose(code: 1000, reason: "done")
        inbound.writeBuffer(&close)
        s.client.pipeline.syncOperations.fireChannelRead(NIOAny(inbound))
        s.loop.run()

        #expect(try EmbeddedWire.outboundBytes(s.backend) == Array("bye".utf8), "the backend is closed only after its pending writes")
        #expect(!s.backend.isActive)
        let frames = try EmbeddedWire.outboundFrames(s.client)
        #expect(frames.count == 1)
        #expect(frames.first?.opcode == EmbeddedFrame.close)
        #expect(frames.first?.closeCode == 1000)
        #expect(!s.client.isActive, "the server closes the TCP connection after its close reply")
        #expect(s.registry.count == 0)
    }

    @Test("backend EOF first: data read before it reaches the client, then close 1000; the slot is freed after the client's reply")
    func backendEOFFirst() throws {
        let s = try SplicedSession()
        // A last read with no read-complete after it, then EOF.
        s.backend.pipeline.syncOperations.fireChannelRead(NIOAny(ByteBuffer(string: "tail")))
        s.backend.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        s.loop.run()

        let frames = try EmbeddedWire.outboundFrames(s.client)
        #expect(frames.map(\.opcode) == [EmbeddedFrame.binary, EmbeddedFrame.close])
        #expect(frames.first?.payload == Array("tail".utf8))
        #expect(frames.last?.closeCode == 1000)
        #expect(!s.backend.isActive)
        #expect(s.client.isActive, "the client is given the chance to answer the close")
        #expect(s.registry.count == 1)

        try s.clientSends(EmbeddedWire.clientClose(code: 1000))
        #expect(!s.client.isActive)
        #expect(s.registry.count == 0)
    }

    @Test("backend error: the client gets close 1011, and is dropped at the close timeout if it does not answer")
    func backendError() throws {
        let s = try SplicedSession()
        s.backend.pipeline.syncOperations.fireErrorCaught(BackendBroke())
        s.loop.run()

        #expect(!s.backend.isActive)
        let frames = try EmbeddedWire.outboundFrames(s.client)
        #expect(frames.count == 1)
        #expect(frames.first?.closeCode == 1011)
        #expect(frames.first?.closeReason.hasPrefix("backend connection failed") == true)
        #expect(s.client.isActive)
        #expect(s.registry.count == 1)

        s.loop.advanceTime(by: s.limits.closeTimeout - .milliseconds(1))
        #expect(s.client.isActive)
        s.loop.advanceTime(by: .milliseconds(1))
        #expect(!s.client.isActive, "a client that never answers the close is dropped at --close-timeout")
        #expect(s.registry.count == 0)
    }

    @Test("client TCP drop without a close frame (EOF): the backend is closed, nothing is sent to the client")
    func clientDropsWithoutClose() throws {
        let s = try SplicedSession()
        try s.clientSends(EmbeddedWire.clientFrame(opcode: EmbeddedFrame.binary, payload: [9, 9]))
        #expect(try EmbeddedWire.outboundBytes(s.backend) == [9, 9])

        s.client.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        s.loop.run()

        #expect(!s.client.isActive)
        #expect(!s.backend.isActive)
        #expect(try EmbeddedWire.outboundFrames(s.client).isEmpty)
        #expect(s.registry.count == 0)
    }

    @Test("client connection reset (the channel just closes): the backend is closed and the slot freed")
    func clientConnectionReset() throws {
        let s = try SplicedSession()
        s.client.close(promise: nil)
        s.loop.run()
        #expect(!s.backend.isActive)
        #expect(s.registry.count == 0)
    }

    @Test("once the relay has sent its close, backend data is no longer passed on to the client")
    func noDataAfterRelayClose() throws {
        let s = try SplicedSession()
        s.session.splice.close(code: 1001, reason: "going away")
        // Backend bytes that arrive while the session ends (its handler is still in the pipeline).
        s.backend.pipeline.syncOperations.fireChannelRead(NIOAny(ByteBuffer(string: "late")))
        s.backend.pipeline.syncOperations.fireChannelReadComplete()
        s.loop.run()
        #expect(s.client.isActive, "the client is waiting to answer the close")
        let frames = try EmbeddedWire.outboundFrames(s.client)
        #expect(frames.map(\.opcode) == [EmbeddedFrame.close], "no data frame after the close frame")
        #expect(frames.first?.closeCode == 1001)
        try s.clientSends(EmbeddedWire.clientClose(code: 1001))
        #expect(s.registry.count == 0)
    }

    @Test("a registry closeAll (shutdown) reaches the session: close 1001 to the client, backend closed")
    func shutdownThroughRegistry() throws {
        let s = try SplicedSession()
        s.registry.closeAll(code: 1001, reason: "server shutting down")
        s.loop.run()
        let frames = try EmbeddedWire.outboundFrames(s.client)
        #expect(frames.first?.closeCode == 1001)
        #expect(!s.backend.isActive)
        try s.clientSends(EmbeddedWire.clientClose(code: 1001))
        #expect(s.registry.count == 0)
    }
}
