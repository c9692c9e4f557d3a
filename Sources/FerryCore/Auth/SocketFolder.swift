import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `--token-sockets DIR` (websockify's UnixDomainSocketDirectory): a token is the name of a Unix
/// socket in one folder, looked up at each handshake because such sockets come and go with the
/// consoles behind them. Only a plain name inside the folder counts: no `/`, no `.` or `..`, and the
/// file must be a socket.
enum SocketFolder {
    static func isSocketName(_ token: String) -> Bool {
        !token.isEmpty && token != "." && token != ".." && !token.utf8.contains(UInt8(ascii: "/")) && !token.utf8.contains(0)
            && token.utf8.count <= 255
    }

    /// The socket's target, or nil when no socket has that name. `stat` runs on NIO's thread pool.
    static func socket(named name: String, in folder: String, eventLoop: EventLoop) -> EventLoopFuture<BackendTarget?> {
        let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
        // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
        guard path.utf8.count <= 107 else { return eventLoop.makeSucceededFuture(nil) }
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
            return .unix(path: path)
        }
    }
}
