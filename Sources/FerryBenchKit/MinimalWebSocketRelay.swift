import FerryCore
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The least a WebSocket relay built on NIO's channels can do per session, run as a process of its
/// own (`ferry-bench --serve-minimal-relay`) so its CPU is measured like any relay's: the floor for
/// Ferry's handshake figures. Per connection it does the socket work Ferry does and nothing else:
/// accept, read the request up to its blank line (no HTTP parser, no checks), connect the backend
/// with a default `ClientBootstrap`, answer `101`, answer the client's close frame with a close frame,
/// close both sockets. One listening socket per event loop (`SO_REUSEPORT`), as Ferry. In between it
/// relays messages with Ferry's frame parser and unmasking, but without backpressure, limits or
/// timers: the handshakes and latency scenarios only.
public enum MinimalWebSocketRelay {
    /// Serves until the process is killed. Both addresses are `IP:PORT`.
    public static func serve(listen: String, target: String) throws -> Never {
        let listen = try Self.address(listen, flag: "--serve-minimal-relay")
        let target = try Self.address(target, flag: "--minimal-relay-target")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var port = listen.port ?? 0
        for loop in group.makeIterator() {
            let channel = try ServerBootstrap(group: loop)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(MinimalRelayClientHandler(target: target))
                    }
                }
                .bind(to: try SocketAddress(ipAddress: listen.ipAddress ?? "127.0.0.1", port: port)).wait()
            port = channel.localAddress?.port ?? port
        }
        while true { sleep(3600) }
    }

    static func address(_ text: String, flag: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              let address = try? SocketAddress(ipAddress: String(text[..<colon]), port: port)
        else { throw BenchError.relayDidNotStart("\(flag) '\(text)': expected IP:PORT, e.g. 127.0.0.1:8080") }
        return address
    }
}

/// The client's side: the request, the backend connect, the 101; then frames, until a close frame
/// ends the session.
private final class MinimalRelayClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let target: SocketAddress
    private var request = ByteBuffer()
    private var backend: Channel?
    private enum State { case readingRequest, connecting, upgraded, closed }
    private var state = State.readingRequest
    private var parser = WebSocketFrameParser(role: .server)
    /// The opcode of the frame whose payload is arriving.
    private var opcode: UInt8 = 0

    init(target: SocketAddress) {
        self.target = target
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        switch self.state {
        case .readingRequest:
            self.request.writeBuffer(&bytes)
            guard let key = MinimalRequest.key(in: self.request) else {
                if self.request.readableBytes > 8192 { context.close(promise: nil) }
                return
            }
            self.state = .connecting
            let client = context.channel
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { backend in
                    backend.eventLoop.makeCompletedFuture {
                        try backend.pipeline.syncOperations.addHandler(MinimalRelayBackendHandler(client: client))
                    }
                }
                .connect(to: self.target)
                .whenComplete { result in
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let backend):
                        handler.backend = backend
                        handler.state = .upgraded
                        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(WebSocketAccept.value(forKey: key))\r\n\r\n"
                        context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
                    case .failure:
                        context.close(promise: nil)
                    }
                }
        case .upgraded:
            self.relayFrames(&bytes, context: context)
        case .connecting, .closed:
            break
        }
    }

    /// Client frames: data payload unmasked to the backend, a close frame answered and both closed.
    /// No backpressure and no fragmentation rules: the handshakes and latency scenarios only.
    private func relayFrames(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        do {
            while let event = try self.parser.next(&bytes) {
                switch event {
                case .header(let header):
                    self.opcode = header.opcode
                    if header.opcode == 0x8 { self.closeBoth(context: context) }
                case .payload(let piece, let maskKey, let phase):
                    guard self.opcode & 0x8 == 0, let backend = self.backend, let maskKey else { continue }
                    var unmasked = context.channel.allocator.buffer(capacity: piece.readableBytes)
                    unmasked.writeMasked(piece, key: maskKey, phase: phase)
                    backend.write(unmasked, promise: nil)
                case .frameEnd:
                    break
                }
                if self.state == .closed { return }
            }
        } catch {
            self.closeBoth(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.backend?.flush()
        context.fireChannelReadComplete()
    }

    private func closeBoth(context: ChannelHandlerContext) {
        var close = context.channel.allocator.buffer(capacity: 4)
        close.writeBytes([0x88, 0x02, 0x03, 0xE8])
        context.writeAndFlush(Self.wrapOutboundOut(close), promise: nil)
        context.close(promise: nil)
        self.backend?.close(promise: nil)
        self.state = .closed
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.backend?.close(promise: nil)
        context.fireChannelInactive()
    }
}

/// The backend's side: its bytes go to the client as binary frames; its end ends the client's
/// connection.
private final class MinimalRelayBackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let client: Channel

    init(client: Channel) {
        self.client = client
    }

    /// Each read goes out as one binary frame: a header, then the bytes as they are.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = Self.unwrapInboundIn(data)
        var header = context.channel.allocator.buffer(capacity: 10)
        header.writeInteger(UInt8(0x82))
        switch payload.readableBytes {
        case ..<126:
            header.writeInteger(UInt8(payload.readableBytes))
        case ..<65536:
            header.writeInteger(UInt8(126))
            header.writeInteger(UInt16(payload.readableBytes))
        default:
            header.writeInteger(UInt8(127))
            header.writeInteger(UInt64(payload.readableBytes))
        }
        self.client.write(header, promise: nil)
        self.client.write(payload, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.client.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.client.close(promise: nil)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension MinimalRelayClientHandler: Sendable {}

@available(*, unavailable)
extension MinimalRelayBackendHandler: Sendable {}
