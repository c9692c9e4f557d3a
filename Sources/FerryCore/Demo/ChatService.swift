import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The demo's backend: a line-based TCP chat room. Every line a client sends goes to every connected
/// client, so browser users (through the relay) and `nc` users (directly) meet in one room.
public final class ChatService: Sendable {
    private let members = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
    private let group: EventLoopGroup

    /// Longest line accepted; a client that sends more is disconnected.
    static let maxLineLength = 4096

    public init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Starts listening; returns the listening channel.
    public func start(host: String, port: Int) async throws -> Channel {
        try await ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ChatMemberHandler(room: self))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    func join(_ channel: Channel) {
        self.members.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
    }

    func leave(_ channel: Channel) {
        _ = self.members.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func broadcast(_ line: ByteBuffer) {
        let everyone = self.members.withLockedValue { Array($0.values) }
        for member in everyone { member.writeAndFlush(line, promise: nil) }
    }
}

/// One chat member: splits what it sends into lines and hands each to the room.
private final class ChatMemberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let room: ChatService
    private var partial = ByteBuffer()

    init(room: ChatService) {
        self.room = room
    }

    func channelActive(context: ChannelHandlerContext) {
        self.room.join(context.channel)
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "* welcome to the Ferry demo chat\n")), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.room.leave(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        self.partial.writeBuffer(&bytes)
        while let newline = self.partial.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = self.partial.readSlice(length: newline - self.partial.readerIndex + 1)!
            self.room.broadcast(line)
        }
        if self.partial.readableBytes > ChatService.maxLineLength {
            context.close(promise: nil)
        }
        self.partial.discardReadBytes()
    }
}
