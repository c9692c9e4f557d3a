import NIOCore
import NIOPosix
import NIOSSL

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

    /// A connection whose pipeline already ends in a ``ClientDriver`` (an HTTP/2 stream).
    static func wrap(_ channel: Channel) async throws -> BenchConnection {
        let driver = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientDriver.self), eventLoop: channel.eventLoop)
        }.get()
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
