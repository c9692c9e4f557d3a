import NIOCore
import NIOPosix

/// The TCP services the benchmark measures against, the same ones for plain TCP and for relays, so a
/// ratio compares only the path in between.
///
/// - sink: reads an 8-byte big-endian count, then that many bytes, then answers one byte (`0x06`).
/// - source: reads an 8-byte count, then sends that many bytes as fast as the peer takes them, then closes.
/// - echo: writes back what it reads.
/// - stall: accepts and never reads.
public final class BenchBackends: Sendable {
    public let sinkPort: Int
    public let sourcePort: Int
    public let echoPort: Int
    public let stallPort: Int
    private let channels: [Channel]

    public static func start(group: EventLoopGroup) async throws -> BenchBackends {
        var channels: [Channel] = []
        for kind in [BackendKind.sink, .source, .echo, .stall] { channels.append(try await Self.listen(kind, group: group)) }
        return BenchBackends(channels: channels)
    }

    /// One more listener of a kind, on a port of its own. Connection-heavy scenarios (handshakes, the
    /// idle ramp) give each path its own: the tens of thousands of TIME_WAIT connections one path
    /// leaves to a port would otherwise slow the next path's connects to that same port (the kernel
    /// searches longer for a free source port), which measured as a 40 % lower handshake rate.
    public static func listen(_ kind: BackendKind, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: kind != .stall)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler: ChannelHandler
                    switch kind {
                    case .sink: handler = SinkHandler()
                    case .source: handler = SourceHandler()
                    case .echo: handler = EchoHandler()
                    case .stall: handler = StallHandler()
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    private init(channels: [Channel]) {
        self.channels = channels
        self.sinkPort = channels[0].localAddress!.port!
        self.sourcePort = channels[1].localAddress!.port!
        self.echoPort = channels[2].localAddress!.port!
        self.stallPort = channels[3].localAddress!.port!
    }

    public func port(of kind: BackendKind) -> Int {
        switch kind {
        case .sink: return self.sinkPort
        case .source: return self.sourcePort
        case .echo: return self.echoPort
        case .stall: return self.stallPort
        }
    }

    public func stop() async {
        for channel in self.channels { try? await channel.close() }
    }
}

public enum BackendKind: String, CaseIterable, Sendable {
    case sink, source, echo, stall
}

/// Reads the 8-byte count prefix shared by sink and source.
private struct CountPrefix {
    private var buffer = ByteBuffer()
    private(set) var value: UInt64?

    /// Consumes prefix bytes from `input`; returns true once the count is known.
    mutating func consume(_ input: inout ByteBuffer) -> Bool {
        if self.value != nil { return true }
        let needed = 8 - self.buffer.readableBytes
        var part = input.readSlice(length: min(needed, input.readableBytes))!
        self.buffer.writeBuffer(&part)
        if self.buffer.readableBytes == 8 { self.value = self.buffer.readInteger(as: UInt64.self) }
        return self.value != nil
    }
}

private final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var prefix = CountPrefix()
    private var received: UInt64 = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        guard self.prefix.consume(&input), let expected = self.prefix.value else { return }
        let before = self.received
        self.received += UInt64(input.readableBytes)
        if before < expected && self.received >= expected {
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(bytes: [0x06])), promise: nil)
        }
    }
}

private final class SourceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var prefix = CountPrefix()
    private var remaining: UInt64 = 0
    private var started = false
    private var chunk = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        guard !self.started, self.prefix.consume(&input), let count = self.prefix.value else { return }
        self.started = true
        self.remaining = count
        self.chunk = context.channel.allocator.buffer(repeating: 0x5A, count: 64 * 1024)
        self.pump(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.pump(context: context) }
    }

    private func pump(context: ChannelHandlerContext) {
        while self.remaining > 0 && context.channel.isWritable {
            let count = Int(min(UInt64(self.chunk.readableBytes), self.remaining))
            context.write(Self.wrapOutboundOut(self.chunk.getSlice(at: self.chunk.readerIndex, length: count)!), promise: nil)
            self.remaining -= UInt64(count)
        }
        context.flush()
        if self.remaining == 0 && self.started {
            self.started = false
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

private final class StallHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
}
