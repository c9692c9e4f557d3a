#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking TCP connection to a loopback port, for the lean clients: one file descriptor and plain
/// system calls, no event loop, no futures, no allocation per call. Written by hand because the
/// point is a client whose own cost per connection is a few system calls, so that what the
/// benchmark measures is the server (NIO's client adds an event-loop hop and several allocations
/// per connection, which capped the handshake figures at the client).
struct BlockingSocket {
    let descriptor: Int32

    /// Connects to 127.0.0.1:`port` with `TCP_NODELAY`; reads and writes give up after `timeoutSeconds`.
    init(port: Int, timeoutSeconds: Int = 10) throws(LeanClientError) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw .system("socket", errno) }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            _ = closeDescriptor(descriptor)
            throw .system("connect", error)
        }
        self.descriptor = descriptor
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(LeanClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = send(self.descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if written < 0 {
                if errno == EINTR { continue }
                throw .system("send", errno)
            }
            offset += written
        }
    }

    /// Reads what is there, at most `buffer.count` bytes; 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(LeanClientError) -> Int {
        while true {
            let count = recv(self.descriptor, buffer.baseAddress!, buffer.count, 0)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw .system("recv", errno)
        }
    }

    func close() {
        _ = closeDescriptor(self.descriptor)
    }
}

private func closeDescriptor(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

/// Why a lean client gave up.
public enum LeanClientError: Error, CustomStringConvertible {
    case system(String, Int32)
    case notUpgraded(String)
    case closedEarly(String)

    public var description: String {
        switch self {
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
        case .notUpgraded(let statusLine): return "the server did not answer 101: \(statusLine)"
        case .closedEarly(let what): return "the server closed the connection \(what)"
        }
    }
}
