import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis, set up for use: TLS if asked, AUTH, SELECT, then PING. Commands are
/// pipelined (``RESPChannelHandler``); each has a deadline, and a command that misses it closes the
/// connection, because a reply that comes later would complete the wrong command.
final class RedisConnection: Sendable {
    let channel: Channel
    let commandTimeout: TimeAmount

    private init(channel: Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// Connects and authenticates. `onMessage` makes it a subscriber connection (which can only
    /// (P)SUBSCRIBE and PING): published messages are handed to it on the connection's event loop.
    static func connect(
        to endpoint: RedisEndpoint,
        tls: NIOSSLContext?,
        on eventLoop: EventLoop,
        connectTimeout: TimeAmount,
        commandTimeout: TimeAmount,
        onMessage: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let host = endpoint.host
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // SNI and hostname checks need a name; for an IP address NIOSSL checks the IP SANs.
                        let serverName = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(RESPChannelHandler(onMessage: onMessage))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .get()
        let connection = RedisConnection(channel: channel, commandTimeout: commandTimeout)
        do {
            if let password = endpoint.password {
                let auth = endpoint.user.map { RESPCommand("AUTH", $0, password) } ?? RESPCommand("AUTH", password)
                try await connection.expectOK(auth)
            }
            if endpoint.database != 0 {
                try await connection.expectOK(RESPCommand("SELECT", String(endpoint.database)))
            }
            let pong = try await connection.send(RESPCommand("PING")).get()
            if case .error(let message) = pong { throw RedisFailure.refused(command: "PING", message: message) }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Sends one command; the future has its reply (a Redis error reply is a value, not a failure).
    func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        let promise = self.channel.eventLoop.makePromise(of: RESPValue.self)
        let timeout = self.channel.eventLoop.scheduleTask(in: self.commandTimeout) { [channel] in
            promise.fail(RedisFailure.timedOut(command: command.name))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        self.channel.writeAndFlush(RESPRequest(command: command, promise: promise)).whenFailure { error in
            promise.fail(error)
        }
        return promise.futureResult
    }

    private func expectOK(_ command: RESPCommand) async throws {
        switch try await self.send(command).get() {
        case .simpleString: return
        case .error(let message): throw RedisFailure.refused(command: command.name, message: message)
        default: throw RedisFailure.unexpectedReply(command: command.name)
        }
    }

    var isActive: Bool { self.channel.isActive }
    var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    func close() {
        self.channel.close(promise: nil)
    }
}
