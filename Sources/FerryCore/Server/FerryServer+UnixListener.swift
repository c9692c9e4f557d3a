import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Unix-socket listeners: a stale socket file is replaced, a live one or any other file is a
/// start-up error, and the mode is applied before anyone can connect.
extension FerryServer {
    /// Binds a Unix socket: a stale socket file (its process is gone) is replaced, a live one is "in
    /// use", and anything else at the path is left alone and refused. Once bound, the file gets `mode`;
    /// until then it has the mode the umask gives, as with websockify. NIO removes the socket file when
    /// the listener is closed (``stop(timeout:)``, the end of ``run()``).
    func bindUnix(_ address: ListenAddress, path: String, mode: UInt16) async throws -> BoundListener {
        func refuse(_ problem: String, expected: String? = nil) -> ConfigurationError {
            ConfigurationError(flag: "--listen", value: address.description, problem: problem, expected: expected)
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw refuse("\(path) exists and is not a socket (it is left alone)", expected: "a free path, or one holding a stale socket")
            }
            switch await Self.probe(unixPath: path, group: self.group) {
            case .stale: break
            case .listening: throw refuse("\(path) is in use: another process is listening on it")
            case .unknown(let why): throw refuse("cannot tell whether the socket \(path) is still in use: \(why)")
            }
        }
        // NIO's clean-up removes only a socket file; the check above has found this one stale.
        let channel = try await self.bootstrap(proxyProtocol: address.proxyProtocol, unix: true)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        guard chmod(path, mode_t(mode)) == 0 else {
            let why = String(cString: strerror(errno))
            try? await channel.close()
            throw refuse("cannot set mode \(String(mode, radix: 8)) on \(path): \(why.lowercased())")
        }
        return BoundListener(address: address, channel: channel)
    }

    enum SocketProbe {
        case listening
        /// Connections are refused (or the file went away): nobody listens.
        case stale
        /// Some other failure, such as no permission to connect: the socket may well be in use.
        case unknown(String)
    }

    /// Connects to the Unix socket at `path` to learn whether a process still listens on it.
    static func probe(unixPath path: String, group: EventLoopGroup) async -> SocketProbe {
        do {
            let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(2)).connect(unixDomainSocketPath: path).get()
            try? await channel.close()
            return .listening
        } catch let error as IOError where error.errnoCode == ECONNREFUSED || error.errnoCode == ENOENT {
            return .stale
        } catch {
            return .unknown(Self.describe(error))
        }
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? IOError {
            return error.description.split(separator: ":").last.map { $0.trimmingSpacesAndLowercased } ?? "\(error)"
        }
        return "\(error)"
    }
}

extension Substring {
    var trimmingSpacesAndLowercased: String {
        String(self.drop { $0 == " " }).lowercased()
    }
}
