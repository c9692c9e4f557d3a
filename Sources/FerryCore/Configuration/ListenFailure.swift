import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a listener could not be opened, as one line a user can act on. NIO's own text for a failed
/// bind is `bind(descriptor:ptr:bytes:): Address already in use (errno: 98)`; the most likely first
/// error of a new user deserves better.
public enum ListenFailure {
    /// `--listen 0.0.0.0:6080: address already in use (another process listens there; pick another port)`.
    public static func configurationError(flag: String, value: String, error: Error) -> ConfigurationError {
        ConfigurationError(flag: flag, value: value, problem: Self.describe(error))
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case EADDRINUSE:
                return "address already in use (another process listens there; pick another port)"
            case EADDRNOTAVAIL:
                return "address not available (it is not one of this machine's; listen on 0.0.0.0, 127.0.0.1 or an address the machine has)"
            case EACCES:
                return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port from 1024 up)"
            default:
                return "cannot listen: " + String(cString: strerror(error.errnoCode)).lowercased()
            }
        }
        if error is SocketAddressError {
            return "cannot listen: the host is not an address of this machine or a name that resolves to one"
        }
        return "cannot listen: \(error)"
    }
}
