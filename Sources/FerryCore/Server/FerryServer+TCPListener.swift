import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TCP listeners. On Linux a listen address gets one listening socket per event loop, all on the same
/// port (`SO_REUSEPORT`), each accepting onto its own loop; the kernel spreads new connections over
/// them by their addresses. With one socket for the whole group NIO accepts on one loop and hands the
/// connections of the others across threads: an eventfd write and a wake-up each way. On 2 cores
/// that hand-off cost a fifth of the sequential handshake rate (ferry-bench, BENCHMARKS.md).
///
/// `SO_REUSEPORT` would also let another process of the same user bind the same port and take a
/// share of the connections without any error. So a fixed port is first bound once without the
/// option (and closed without listening): a port in use is still "address already in use".
extension FerryServer {
    func bindTCP(_ address: ListenAddress, host: String, port: Int) async throws -> BoundListener {
        let loops = Array(self.group.makeIterator())
        #if os(Linux)
        let perLoop = loops.count > 1
        #else
        // Elsewhere SO_REUSEPORT does not spread connections: one socket for the group.
        let perLoop = false
        #endif
        guard perLoop else {
            let channel = try await self.bootstrap(proxyProtocol: address.proxyProtocol, unix: false).bind(host: host, port: port).get()
            return BoundListener(address: address, channel: channel)
        }
        if port != 0 { try Self.probeBind(host: host, port: port) }
        func bind(_ loop: EventLoop, port: Int) async throws -> Channel {
            try await self.bootstrap(proxyProtocol: address.proxyProtocol, unix: false, loop: loop)
                .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                .bind(host: host, port: port).get()
        }
        var channels = [try await bind(loops[0], port: port)]
        do {
            // Port 0: the others join the port the kernel gave the first.
            let bound = channels[0].localAddress?.port ?? port
            for loop in loops.dropFirst() { channels.append(try await bind(loop, port: bound)) }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return BoundListener(address: address, channels: channels)
    }

    /// Binds `host:port` without `SO_REUSEPORT` and closes the socket at once (it never listens, so
    /// no connection can arrive on it). Throws the bind's `IOError` (e.g. `EADDRINUSE`), which
    /// ``ListenFailure`` words for the user.
    static func probeBind(host: String, port: Int) throws {
        #if os(Linux)
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: return
        }
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(descriptor) }
        var one: Int32 = 1
        // As the listeners do: a port whose old connections linger in TIME_WAIT is free.
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if case .v6 = address {
            // As NIO's listeners: an IPv6 socket also takes IPv4 unless the host says otherwise.
            var zero: Int32 = 0
            setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
        }
        let result: Int32
        switch address {
        case .v4(let v4):
            var raw = v4.address
            result = withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let v6):
            var raw = v6.address
            result = withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        case .unixDomainSocket:
            return
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "bind(descriptor:ptr:bytes:)") }
        #endif
    }
}
