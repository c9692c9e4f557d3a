// A bare TCP client (for what WSTestClient cannot do: bind a source address, speak no WebSocket at
// all) and a hand-written upgrade request with a fixed key.

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP connection that keeps what it receives and notices when the server closes; it can bind its
/// source address (`127.0.0.2`, say) before connecting, which WSTestClient cannot.
final class RawClient: Sendable {
    let channel: Channel
    private let state: State

    fileprivate final class State: Sendable {
        let received = NIOLockedValueBox<[UInt8]>([])
        let closed = NIOLockedValueBox(false)
    }

    private init(channel: Channel, state: State) {
        self.channel = channel
        self.state = state
    }

    /// - Parameters:
    ///   - source: the local address to bind before connecting.
    ///   - receiveBufferSize: SO_RCVBUF, set before connecting (so the window stays small).
    ///   - maxSegmentSize: TCP_MAXSEG, set before connecting, so the SYN announces it and the server
    ///     sends segments no bigger (which also keeps the server's send buffer from growing large).
    static func connect(
        to address: SocketAddress,
        from source: SocketAddress? = nil,
        receiveBufferSize: Int? = nil,
        maxSegmentSize: Int? = nil
    ) async throws -> RawClient {
        let state = State()
        var bootstrap = ClientBootstrap(group: IntegrationLoops.group)
            .connectTimeout(.seconds(2))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawClientHandler(state: state))
                }
            }
        if let source { bootstrap = bootstrap.bind(to: source) }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        if let maxSegmentSize {
            bootstrap = bootstrap.channelOption(.tcpOption(NIOBSDSocket.Option(rawValue: TCP_MAXSEG)), value: SocketOptionValue(maxSegmentSize))
        }
        let channel = try await bootstrap.connect(to: address).get()
        return RawClient(channel: channel, state: state)
    }

    var received: [UInt8] { self.state.received.withLockedValue { $0 } }
    var receivedText: String { String(decoding: self.received, as: UTF8.self) }
    /// True once the server closed (EOF, reset) or the client did.
    var isClosed: Bool { self.state.closed.withLockedValue { $0 } }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// The status code of the response head, once the head has arrived (nil if it did not in time).
    func responseStatus(timeout: Duration) async -> Int? {
        _ = await Relay.eventually(timeout: timeout) { self.receivedText.contains("\r\n\r\n") || self.isClosed }
        let text = self.receivedText
        guard let line = text.split(separator: "\r\n", maxSplits: 1).first else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
        return Int(parts[1])
    }

    /// Stops reading from the socket: what the server sends piles up in the kernel, then in the server.
    func stopReading() async throws {
        try await self.channel.setOption(.autoRead, value: false).get()
    }

    func close() async {
        try? await self.channel.close()
    }
}

private final class RawClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let state: RawClient.State

    init(state: RawClient.State) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.state.received.withLockedValue { $0 += buffer.readableBytesView }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state.closed.withLockedValue { $0 = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// A hand-written upgrade request with a fixed, valid key; `headers` are written as given (so a
/// test can leave `Host` out or repeat it).
enum RawUpgrade {
    /// `Sec-WebSocket-Accept` for the fixed key (RFC 6455's own example).
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    static func request(path: String = "/", headers: [(String, String)]) -> String {
        var text = "GET \(path) HTTP/1.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        return text
    }
}
