import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `ferry connect` without `--listen`: standard input and output carry one session (an ssh
/// ProxyCommand, a script's pipe). The descriptors are taken over by a NIO pipe channel (NIO closes
/// them when the session ends, which is how the reader of standard output sees EOF).
public enum ConnectStdio {
    /// Opens the session and waits for its end. Throws a ``ConnectFailure`` when the WebSocket cannot
    /// be opened, or a ``ConfigurationError`` when standard input or output cannot be used (NIO's
    /// pipe channel takes pipes, sockets and terminals, not regular files).
    public static func run(dialer: WebSocketDialer, group: EventLoopGroup) async throws -> SessionEnd {
        try Self.checkPollable(STDIN_FILENO, name: "standard input")
        try Self.checkPollable(STDOUT_FILENO, name: "standard output")
        let bufferSize = dialer.configuration.bufferSize
        let local: Channel
        do {
            local = try await NIOPipeBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try RelayChannelOptions.apply(to: channel, bufferSize: bufferSize, halfClosure: true, autoRead: false)
                        try channel.pipeline.syncOperations.addHandler(EarlyLocalInput())
                    }
                }
                .takingOwnershipOfDescriptors(input: 0, output: 1)
                .get()
        } catch {
            throw ConfigurationError(flag: "standard input/output", value: "", problem: "cannot be used (\(error))", expected: "pipes or a terminal, e.g. cat FILE | ferry connect URL; or --listen")
        }
        return try await ConnectSession.start(local: local, dialer: dialer, pools: PayloadBufferPools(group: group)).get()
    }

    /// epoll takes pipes, sockets and terminals; a regular file or another device (`< /dev/null`) is
    /// refused here, before NIO registers it (it would stop the process on the refusal).
    static func checkPollable(_ descriptor: CInt, name: String) throws(ConfigurationError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw ConfigurationError(flag: name, value: "", problem: "is not open", expected: "a pipe, a socket or a terminal; or --listen")
        }
        switch info.st_mode & S_IFMT {
        case S_IFIFO, S_IFSOCK:
            return
        case S_IFCHR where isatty(descriptor) == 1:
            return
        default:
            throw ConfigurationError(flag: name, value: "", problem: "is a file or a device, which cannot be polled", expected: "a pipe, a socket or a terminal (e.g. cat FILE | ferry connect URL | cat); or --listen")
        }
    }
}
