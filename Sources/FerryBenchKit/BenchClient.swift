import FerryCore
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Where a benchmark connection goes: straight to a backend (the baseline) or through a relay.
public struct Endpoint: Sendable {
    public var port: Int
    /// True when the port is a relay: the connection opens with a WebSocket handshake and frames data.
    public var isWebSocket: Bool
    /// Client TLS context for `wss://`; nil for plaintext.
    public var tls: NIOSSLContext?

    public init(port: Int, isWebSocket: Bool, tls: NIOSSLContext? = nil) {
        self.port = port
        self.isWebSocket = isWebSocket
        self.tls = tls
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case handshakeFailed(String)
    case connectionClosed
    case relayDidNotStart(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case .handshakeFailed(let why): return "WebSocket handshake failed: \(why)"
        case .connectionClosed: return "connection closed before the transfer finished"
        case .relayDidNotStart(let why): return "relay did not start: \(why)"
        case .timedOut(let what): return "timed out: \(what)"
        }
    }
}

/// One benchmark client connection. The client does as little as it can per byte (frames are built
/// once and written again and again, received payload is only counted), so that it is much faster
/// than what it measures.
public final class BenchConnection: Sendable {
    public let channel: Channel
    private let driver: NIOLoopBound<ClientDriver>

    private init(channel: Channel, driver: NIOLoopBound<ClientDriver>) {
        self.channel = channel
        self.driver = driver
    }

    public static func connect(to endpoint: Endpoint, group: EventLoopGroup, autoRead: Bool = true) async throws -> BenchConnection {
        let loop = group.next()
        let upgraded = loop.makePromise(of: Void.self)
        // A relay that stops answering (websockify past its limits) must not hang the benchmark.
        let deadline = loop.scheduleTask(in: .seconds(10)) { upgraded.fail(BenchError.timedOut("connect and upgrade")) }
        defer { deadline.cancel() }
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = endpoint.tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    if endpoint.isWebSocket {
                        try sync.addHandler(UpgradeRequestHandler(port: endpoint.port, done: upgraded))
                    } else {
                        upgraded.succeed()
                    }
                    try sync.addHandler(ClientDriver(isWebSocket: endpoint.isWebSocket))
                }
            }
            .connect(host: "127.0.0.1", port: endpoint.port).get()
        do {
            try await upgraded.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        let driver = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientDriver.self), eventLoop: channel.eventLoop)
        }.get()
        if !autoRead { try await channel.setOption(.autoRead, value: false).get() }
        return BenchConnection(channel: channel, driver: driver)
    }

    /// Sends `count` bytes in messages of `messageSize` to a sink and waits for its acknowledgement.
    public func upload(count: Int, messageSize: Int) async throws {
        let driver = self.driver
        try await self.channel.eventLoop.flatSubmit { driver.value.upload(count: count, messageSize: messageSize) }.get()
    }

    /// Sends `count` bytes to a sink as one single WebSocket frame, streamed in 64 KiB pieces.
    public func uploadSingleFrame(count: Int) async throws {
        let driver = self.driver
        try await self.channel.eventLoop.flatSubmit { driver.value.uploadSingleFrame(count: count) }.get()
    }

    /// Asks a source for `count` bytes and waits until all have arrived.
    public func download(count: Int) async throws {
        let driver = self.driver
        try await self.channel.eventLoop.flatSubmit { driver.value.download(count: count) }.get()
    }

    /// Asks a source for `count` bytes without waiting (used with auto-read off: a reader that stalls).
    public func requestDownload(count: Int) async throws {
        let driver = self.driver
        try await self.channel.eventLoop.submit { driver.value.requestDownload(count: count) }.get()
    }

    /// Sends `size` bytes to an echo backend and waits for them to come back; returns nanoseconds.
    public func echo(size: Int) async throws -> UInt64 {
        let driver = self.driver
        return try await self.channel.eventLoop.flatSubmit { driver.value.echo(size: size) }.get()
    }

    /// Writes as fast as the peer accepts for `duration`; returns the bytes handed to the kernel.
    public func push(for duration: TimeAmount) async throws -> UInt64 {
        let driver = self.driver
        return try await self.channel.eventLoop.flatSubmit { driver.value.push(for: duration) }.get()
    }

    /// Sends pings with 125-byte payloads as fast as the peer accepts for `duration` (a hostile
    /// client: with auto-read off it never reads the pongs); returns the bytes handed to the kernel.
    public func pushPings(for duration: TimeAmount) async throws -> UInt64 {
        let driver = self.driver
        return try await self.channel.eventLoop.flatSubmit { driver.value.push(for: duration, pings: true) }.get()
    }

    public func close() async {
        try? await self.channel.close()
    }
}

/// Writes the HTTP upgrade request and waits for `101`; then leaves the pipeline, passing on any bytes
/// that came after the response.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let port: Int
    private let done: EventLoopPromise<Void>
    private var response = ByteBuffer()

    init(port: Int, done: EventLoopPromise<Void>) {
        self.port = port
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        let request =
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:\(self.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: binary\r\n\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        self.response.writeBuffer(&input)
        let view = self.response.readableBytesView
        guard let end = Self.headerEnd(view) else {
            if self.response.readableBytes > 16 * 1024 { self.fail("response head too long", context: context) }
            return
        }
        let head = self.response.readString(length: end - view.startIndex)!
        guard head.hasPrefix("HTTP/1.1 101") else {
            self.fail(String(head.prefix { $0 != "\r" }), context: context)
            return
        }
        let rest = self.response
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if rest.readableBytes > 0 { context.fireChannelRead(Self.wrapInboundOut(rest)) }
        self.done.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.fail(BenchError.handshakeFailed("connection closed"))
        context.fireChannelInactive()
    }

    private func fail(_ why: String, context: ChannelHandlerContext) {
        self.done.fail(BenchError.handshakeFailed(why))
        context.close(promise: nil)
    }

    private static func headerEnd(_ view: ByteBufferView) -> Int? {
        var index = view.startIndex
        while index + 3 < view.endIndex {
            if view[index] == 13 && view[index + 1] == 10 && view[index + 2] == 13 && view[index + 3] == 10 {
                return index + 4
            }
            index += 1
        }
        return nil
    }
}

/// Sends prepared messages and counts what comes back, on the connection's event loop.
final class ClientDriver: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maskKey: WebSocketMaskingKey = [0x37, 0xFA, 0x21, 0x3D]

    private let isWebSocket: Bool
    private var parser = WebSocketFrameParser(role: .client)
    private var context: ChannelHandlerContext?
    /// Payload bytes still awaited and who waits for them.
    private var awaited = 0
    private var arrival: EventLoopPromise<Void>?
    /// An upload in progress: the message to repeat and how many bytes of payload remain.
    private var pending: (message: ByteBuffer, remaining: Int, messagePayload: Int)?
    private var pushUntil: NIODeadline?
    private var pushed: UInt64 = 0
    private var pushDone: EventLoopPromise<UInt64>?

    init(isWebSocket: Bool) {
        self.isWebSocket = isWebSocket
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        guard self.isWebSocket else {
            self.received(input.readableBytes)
            return
        }
        do {
            var control = false
            while let event = try self.parser.next(&input) {
                switch event {
                case .header(let header): control = header.isControl
                case .payload(let piece, _, _): if !control { self.received(piece.readableBytes) }
                case .frameEnd: break
                }
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.arrival?.fail(BenchError.connectionClosed)
        self.arrival = nil
        self.pushDone?.succeed(self.pushed)
        self.pushDone = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.pump() }
        context.fireChannelWritabilityChanged()
    }

    private func received(_ count: Int) {
        guard self.awaited > 0 else { return }
        self.awaited -= count
        if self.awaited <= 0, let arrival = self.arrival {
            self.arrival = nil
            arrival.succeed()
        }
    }

    private func expect(_ count: Int, timeout: TimeAmount = .seconds(120)) -> EventLoopFuture<Void> {
        let promise = self.context!.eventLoop.makePromise(of: Void.self)
        self.awaited = count
        self.arrival = promise
        let deadline = self.context!.eventLoop.scheduleTask(in: timeout) { promise.fail(BenchError.timedOut("waiting for \(count) bytes")) }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }

    // MARK: Operations

    func upload(count: Int, messageSize: Int) -> EventLoopFuture<Void> {
        let acknowledged = self.expect(1)
        self.send(self.countPrefix(UInt64(count)))
        let payload = self.context!.channel.allocator.buffer(repeating: 0xA5, count: messageSize)
        self.pending = (self.frame(payload), count, messageSize)
        self.pump()
        return acknowledged
    }

    func uploadSingleFrame(count: Int) -> EventLoopFuture<Void> {
        precondition(self.isWebSocket && count % 65536 == 0 && count >= 65536)
        let allocator = self.context!.channel.allocator
        let acknowledged = self.expect(1)
        // Header for one binary frame of `count` bytes; the first 8 payload bytes are the sink's count prefix.
        var header = allocator.buffer(capacity: 14)
        header.writeInteger(UInt8(0x82))
        header.writeInteger(UInt8(0x80 | 127))
        header.writeInteger(UInt64(count))
        header.writeBytes(Self.maskKey)
        var first = allocator.buffer(capacity: 65536)
        first.writeInteger(UInt64(count - 8))
        first.writeRepeatingByte(0xA5, count: 65536 - 8)
        var rest = allocator.buffer(repeating: 0xA5, count: 65536)
        first = Self.masked(first, allocator: allocator)
        rest = Self.masked(rest, allocator: allocator)
        self.context!.write(Self.wrapOutboundOut(header), promise: nil)
        self.context!.write(Self.wrapOutboundOut(first), promise: nil)
        self.pending = (rest, count - 65536, 65536)
        self.pump()
        return acknowledged
    }

    func download(count: Int) -> EventLoopFuture<Void> {
        let arrived = self.expect(count)
        self.send(self.countPrefix(UInt64(count)))
        return arrived
    }

    func requestDownload(count: Int) {
        self.send(self.countPrefix(UInt64(count)))
    }

    func echo(size: Int) -> EventLoopFuture<UInt64> {
        let started = NIODeadline.now()
        let arrived = self.expect(size)
        self.send(self.frame(self.context!.channel.allocator.buffer(repeating: 0x42, count: size)))
        return arrived.map { UInt64((NIODeadline.now() - started).nanoseconds) }
    }

    func push(for duration: TimeAmount, pings: Bool = false) -> EventLoopFuture<UInt64> {
        let promise = self.context!.eventLoop.makePromise(of: UInt64.self)
        let message = pings ? self.pingBatch() : self.frame(self.context!.channel.allocator.buffer(repeating: 0xA5, count: 65536))
        self.pending = (message, Int.max, message.readableBytes)
        self.pushUntil = .now() + duration
        self.pushDone = promise
        self.context!.eventLoop.assumeIsolated().scheduleTask(in: duration) { [self] in
            self.pending = nil
            self.pushDone?.succeed(self.pushed)
            self.pushDone = nil
        }
        self.pump()
        return promise.futureResult
    }

    private func pump() {
        guard let context, var pending = self.pending else { return }
        while pending.remaining > 0 && context.channel.isWritable {
            let payload = min(pending.remaining, pending.messagePayload)
            var message = pending.message
            if payload < pending.messagePayload {
                message = self.frame(context.channel.allocator.buffer(repeating: 0xA5, count: payload))
            }
            if self.pushDone != nil {
                let size = UInt64(payload)
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.assumeIsolated().whenSuccess { self.pushed += size }
                context.write(Self.wrapOutboundOut(message), promise: written)
            } else {
                context.write(Self.wrapOutboundOut(message), promise: nil)
            }
            pending.remaining -= payload
        }
        // Store before flushing: a flush can make the channel writable again and re-enter `pump`.
        self.pending = pending.remaining > 0 ? pending : nil
        context.flush()
    }

    /// 500 masked pings with 125-byte payloads (the largest a control frame may carry), back to back.
    private func pingBatch() -> ByteBuffer {
        let allocator = self.context!.channel.allocator
        let payload = Self.masked(allocator.buffer(repeating: 0x50, count: 125), allocator: allocator)
        var batch = allocator.buffer(capacity: 500 * 131)
        for _ in 0..<500 {
            batch.writeInteger(UInt8(0x89))
            batch.writeInteger(UInt8(0x80 | 125))
            batch.writeBytes(Self.maskKey)
            batch.writeImmutableBuffer(payload)
        }
        return batch
    }

    private func send(_ buffer: ByteBuffer) {
        self.context!.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
    }

    private func countPrefix(_ count: UInt64) -> ByteBuffer {
        var buffer = self.context!.channel.allocator.buffer(capacity: 8)
        buffer.writeInteger(count)
        return self.frame(buffer)
    }

    /// A whole binary frame (masked, as a client must) around `payload`, or the payload itself on plain TCP.
    private func frame(_ payload: ByteBuffer) -> ByteBuffer {
        guard self.isWebSocket else { return payload }
        let allocator = self.context!.channel.allocator
        var frame = allocator.buffer(capacity: payload.readableBytes + 14)
        frame.writeInteger(UInt8(0x82))
        let count = payload.readableBytes
        if count < 126 {
            frame.writeInteger(UInt8(0x80 | count))
        } else if count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(count))
        }
        frame.writeBytes(Self.maskKey)
        frame.writeMasked(payload, key: Self.maskKey, phase: 0)
        return frame
    }

    private static func masked(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: payload.readableBytes)
        out.writeMasked(payload, key: Self.maskKey, phase: 0)
        return out
    }
}
