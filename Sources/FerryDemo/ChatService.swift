import FerryCore
import NIOCore
import NIOPosix

/// The demo's backend: a line-based TCP chat room. Browser users (through the relay) and terminal
/// users (`nc`, directly) meet in one room: each gives a name as its first line, then every line it
/// sends goes to everyone else. Nothing anyone says is logged.
public final class ChatService: Sendable {
    private let group: EventLoopGroup
    private let room: ChatRoom

    public init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, limits: ChatLimits = ChatLimits()) {
        self.group = group
        self.room = ChatRoom(limits: limits)
    }

    /// Everyone named, in alphabetical order.
    public var roster: [String] { self.room.roster }

    /// Starts listening; returns the listening channel.
    public func start(host: String, port: Int) async throws -> Channel {
        let queued = self.room.limits.maxQueuedBytes
        return try await ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: queued / 2, high: queued))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ChatMemberHandler(room: self.room))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
