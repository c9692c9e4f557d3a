import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether a dynamic target (named by a token) may be reached: the relay must never become an
/// open proxy into the network behind it.
///
/// A host name is resolved first and *every* address it resolves to must be allowed, so a name that
/// also points at 169.254.169.254 or 127.0.0.1 cannot slip past a rule written for other addresses.
/// A plain TCP connection then goes to a checked address, not to the name again (no second lookup
/// for DNS rebinding to exploit). A `tls://` target keeps its name, which certificate verification
/// needs; it is resolved again at connect time, and the certificate check is what binds the name
/// then (so `tls-verify=false` should not be combined with dynamic targets). With no rules, every
/// dynamic target is refused; `--allow-target any` trusts every target (the operator's token source
/// is then the allowlist, as in websockify).
public struct TargetAllowlist: Sendable {
    public let rules: [TargetRule]
    public let allowsAny: Bool

    public init(rules: [TargetRule], allowsAny: Bool = false) {
        self.rules = rules
        self.allowsAny = allowsAny
    }

    /// The target to connect to (an address, or the socket path), or nil if it is not allowed.
    /// Name resolution runs on NIO's thread pool, off the event loop.
    public func check(_ target: BackendTarget, on eventLoop: EventLoop) -> EventLoopFuture<BackendTarget?> {
        if self.allowsAny {
            if case .dynamic = target { return eventLoop.makeSucceededFuture(nil) }
            return eventLoop.makeSucceededFuture(target)
        }
        guard !self.rules.isEmpty else { return eventLoop.makeSucceededFuture(nil) }
        switch target {
        case .dynamic:
            return eventLoop.makeSucceededFuture(nil)
        case .unix(let path):
            let allowed = self.rules.contains { rule in
                guard case .name(let name) = rule.hosts, name.hasPrefix("unix:") else { return false }
                let allowedPath = name.dropFirst("unix:".count)
                return allowedPath.hasSuffix("/") ? path.hasPrefix(allowedPath) && !path.contains("/../") : path == allowedPath
            }
            return eventLoop.makeSucceededFuture(allowed ? target : nil)
        case .tcp(let host, let port), .tls(let host, let port):
            let rules = self.rules
            let isTLS = target.usesTLS
            return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
                let addresses = Self.resolve(host)
                guard !addresses.isEmpty else { return nil }
                // Name rules match by the addresses their names resolve to.
                var named: [String: [[UInt8]]] = [:]
                for rule in rules {
                    if case .name(let name) = rule.hosts, !name.hasPrefix("unix:"), named[name] == nil {
                        named[name] = Self.resolve(name)
                    }
                }
                let allAllowed = addresses.allSatisfy { address in
                    rules.contains { rule in
                        if case .name(let name) = rule.hosts {
                            return rule.allows(address: address, port: port, nameAddresses: named[name] ?? [])
                        }
                        return rule.allows(address: address, port: port)
                    }
                }
                guard allAllowed, let text = IPAddressBytes.text(addresses[0]) else { return nil }
                return isTLS ? .tls(host: host, port: port) : .tcp(host: text, port: port)
            }
        }
    }

    /// Every IPv4 and IPv6 address of a name (or the address itself), as network-order bytes.
    static func resolve(_ host: String) -> [[UInt8]] {
        if let bytes = IPAddressBytes.parse(host) { return [bytes] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var result: [[UInt8]] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let address = current.pointee.ai_addr {
                switch Int32(current.pointee.ai_family) {
                case AF_INET:
                    var v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    result.append(withUnsafeBytes(of: &v4) { Array($0) })
                case AF_INET6:
                    var v6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    result.append(withUnsafeBytes(of: &v6) { Array($0) })
                default:
                    break
                }
            }
            node = current.pointee.ai_next
        }
        var unique: [[UInt8]] = []
        for address in result where !unique.contains(address) { unique.append(address) }
        return unique
    }
}
