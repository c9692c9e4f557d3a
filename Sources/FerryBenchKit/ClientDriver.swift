import FerryCore
import NIOCore

/// Sends prepared messages and counts what comes back, on the connection's event loop.
final class ClientDriver: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let isWebSocket: Bool
    private var parser = WebSocketFrameParser(role: .client)
    private(set) var context: ChannelHandlerContext?
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

    /// Writes pending messages while the channel is writable, flushing each one. Flushing once at
    /// the end would be wrong under TLS: NIOSSL holds unflushed writes where the channel's
    /// writability cannot see them and encrypts everything up to a flush in one go, so the loop would
    /// queue the whole transfer and encrypt all of it into memory before the first byte left (the
    /// relay sat idle meanwhile, which halved every `wss` upload figure before 2026-11-30).
    private func pump() {
        guard let context else { return }
        while var pending = self.pending, pending.remaining > 0, context.channel.isWritable {
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
            // Stored before flushing: a flush can make the channel writable again and re-enter `pump`.
            self.pending = pending.remaining > 0 ? pending : nil
            context.flush()
        }
        // What a caller wrote before calling (a frame's header) may have left the channel unwritable.
        context.flush()
    }

    private func send(_ buffer: ByteBuffer) {
        self.context!.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
    }
}
