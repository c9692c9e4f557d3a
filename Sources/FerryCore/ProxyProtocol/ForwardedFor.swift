import NIOCore
import NIOHTTP1

/// The client address from `X-Forwarded-For` or `Forwarded`, believed only when the peer is a
/// trusted proxy (a TCP peer in `--trusted-proxy`, or with `--trusted-proxy unix` a client of a
/// Unix-socket listener): the list is walked from the right (the hop nearest Ferry), past trusted proxies,
/// and the first address that is not one of them is the client. Anyone can write these headers, so
/// from an untrusted peer they are ignored.
public enum ForwardedFor {
    /// - Parameter trustsUnixSocketPeers: a client of a Unix-socket listener counts as a trusted proxy
    ///   (`--trusted-proxy unix`).
    public static func client(peer: SocketAddress, headers: HTTPHeaders, trusted: [AddressBlock], trustsUnixSocketPeers: Bool) -> String? {
        if case .unixDomainSocket = peer {
            return trustsUnixSocketPeers ? Self.client(trustedPeerHeaders: headers, trusted: trusted) : nil
        }
        guard let bytes = peer.addressBytes else { return nil }
        return Self.client(peer: bytes, headers: headers, trusted: trusted)
    }

    public static func client(peer: [UInt8], headers: HTTPHeaders, trusted: [AddressBlock]) -> String? {
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return nil }
        return Self.client(trustedPeerHeaders: headers, trusted: trusted)
    }

    /// The headers of a peer already known to be a trusted proxy.
    private static func client(trustedPeerHeaders headers: HTTPHeaders, trusted: [AddressBlock]) -> String? {
        var hops: [String] = []
        for value in headers["Forwarded"] {
            for element in value.split(separator: ",") {
                for pair in element.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0].trimmingSpaces.lowercased() == "for" else { continue }
                    hops.append(Self.bareAddress(parts[1].trimmingSpaces))
                }
            }
        }
        if hops.isEmpty {
            for value in headers["X-Forwarded-For"] {
                hops += value.split(separator: ",").map { Self.bareAddress($0.trimmingSpaces) }
            }
        }
        for hop in hops.reversed() {
            guard let bytes = IPAddressBytes.parse(hop) else { return nil }  // garbage: believe nothing further
            if !trusted.contains(where: { $0.contains(bytes) }) { return hop }
        }
        return nil
    }

    /// `"[2001:db8::1]:4711"` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`, quotes removed.
    static func bareAddress(_ text: Substring) -> String {
        var value = text
        if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
            return String(value[value.index(after: value.startIndex)..<close])
        }
        if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") { return String(value[..<colon]) }
        return String(value)
    }
}

