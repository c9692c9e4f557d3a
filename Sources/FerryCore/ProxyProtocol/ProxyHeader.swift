import NIOCore

/// What a HAProxy PROXY protocol header says about a connection.
public enum ProxyHeader: Equatable, Sendable {
    /// The client's address and the address it connected to, as the proxy saw them.
    case proxied(source: SocketAddress, destination: SocketAddress)
    /// A health check from the proxy itself (v2 LOCAL), or a source it could not name (v1 UNKNOWN,
    /// v2 UNSPEC or UNIX): the TCP peer stands for the client.
    case local
}

public struct ProxyProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "PROXY header: \(self.reason)" }
}

/// Parses PROXY protocol v1 (text) and v2 (binary) headers, as they arrive.
///
/// No Swift package has this, so it is written here and kept small and strict: v1 lines of at most
/// 107 bytes with exactly the fields the spec names, v2 headers up to 4 KiB (TLVs are skipped). Every
/// check is made as soon as its bytes are there, so garbage is refused without waiting for more.
public enum ProxyHeaderParser {
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)
    static let v1MaxLength = 107
    static let v2MaxLength = 16 + 4096

    /// The header and its length in bytes, or nil if `bytes` is a valid start that needs more.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ProxyProtocolError) -> (ProxyHeader, Int)? {
        let bytes = Array(bytes.prefix(Self.v2MaxLength))
        guard let first = bytes.first else { return nil }
        if first == Self.v2Signature[0] { return try Self.parseV2(bytes) }
        if first == Self.v1Prefix[0] { return try Self.parseV1(bytes) }
        throw ProxyProtocolError(reason: "missing (the connection must start with one)")
    }

    private static func parseV1(_ bytes: [UInt8]) throws(ProxyProtocolError) -> (ProxyHeader, Int)? {
        let prefixLength = min(bytes.count, Self.v1Prefix.count)
        guard bytes[..<prefixLength].elementsEqual(Self.v1Prefix[..<prefixLength]) else {
            throw ProxyProtocolError(reason: "not a PROXY line")
        }
        guard let cr = bytes.firstIndex(of: 0x0D) else {
            if bytes.count >= Self.v1MaxLength { throw ProxyProtocolError(reason: "v1 line longer than 107 bytes") }
            if bytes.contains(0x0A) { throw ProxyProtocolError(reason: "v1 line ends without CR") }
            return nil
        }
        guard !bytes[..<cr].contains(0x0A) else { throw ProxyProtocolError(reason: "v1 line ends without CR") }
        guard cr + 1 < bytes.count else { return nil }
        guard bytes[cr + 1] == 0x0A, cr + 2 <= Self.v1MaxLength else { throw ProxyProtocolError(reason: "v1 line badly terminated") }
        // Printable US-ASCII only: a NUL would end the address early where C parses it (inet_pton),
        // so `127.0.0.1\0anything` would pass as 127.0.0.1.
        guard bytes[..<cr].allSatisfy({ (0x20...0x7E).contains($0) }), let line = String(validating: bytes[..<cr], as: UTF8.self) else {
            throw ProxyProtocolError(reason: "v1 line is not printable ASCII")
        }
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 2 else { throw ProxyProtocolError(reason: "v1 line has no protocol") }
        switch fields[1] {
        case "UNKNOWN":
            return (.local, cr + 2)
        case "TCP4", "TCP6":
            guard fields.count == 6 else { throw ProxyProtocolError(reason: "v1 \(fields[1]) needs 4 fields") }
            let isV4 = fields[1] == "TCP4"
            guard let sourcePort = Self.port(fields[4]), let destinationPort = Self.port(fields[5]),
                let sourceBytes = IPAddressBytes.parse(String(fields[2])), let destinationBytes = IPAddressBytes.parse(String(fields[3])),
                sourceBytes.count == (isV4 ? 4 : 16), destinationBytes.count == sourceBytes.count,
                let source = try? SocketAddress(ipAddress: String(fields[2]), port: sourcePort),
                let destination = try? SocketAddress(ipAddress: String(fields[3]), port: destinationPort)
            else {
                throw ProxyProtocolError(reason: "v1 addresses or ports are malformed")
            }
            return (.proxied(source: source, destination: destination), cr + 2)
        default:
            throw ProxyProtocolError(reason: "v1 protocol must be TCP4, TCP6 or UNKNOWN")
        }
    }

    /// A decimal port with no sign, no leading zeros (except "0") and no other characters.
    private static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigitCharacter), text == "0" || !text.hasPrefix("0"),
            let value = Int(text), value <= 65535
        else { return nil }
        return value
    }

    private static func parseV2(_ bytes: [UInt8]) throws(ProxyProtocolError) -> (ProxyHeader, Int)? {
        let signatureLength = min(bytes.count, Self.v2Signature.count)
        guard bytes[..<signatureLength].elementsEqual(Self.v2Signature[..<signatureLength]) else {
            throw ProxyProtocolError(reason: "bad v2 signature")
        }
        guard bytes.count >= 16 else { return nil }
        let version = bytes[12] >> 4
        let command = bytes[12] & 0x0F
        guard version == 2 else { throw ProxyProtocolError(reason: "v2 version nibble is \(version)") }
        guard command <= 1 else { throw ProxyProtocolError(reason: "v2 command \(command) is not LOCAL or PROXY") }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        guard family <= 3, transport <= 2 else { throw ProxyProtocolError(reason: "v2 address family or protocol is invalid") }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard 16 + length <= Self.v2MaxLength else { throw ProxyProtocolError(reason: "v2 header longer than 4 KiB") }
        guard bytes.count >= 16 + length else { return nil }
        let total = 16 + length
        if command == 0 { return (.local, total) }  // LOCAL: the proxy's own connection
        let body = bytes[16..<total]
        switch (family, transport) {
        case (1, 1):
            guard length >= 12 else { throw ProxyProtocolError(reason: "v2 IPv4 block is short") }
            let start = body.startIndex
            return (.proxied(
                source: Self.address(Array(body[start..<(start + 4)]), port: body, at: start + 8),
                destination: Self.address(Array(body[(start + 4)..<(start + 8)]), port: body, at: start + 10)
            ), total)
        case (2, 1):
            guard length >= 36 else { throw ProxyProtocolError(reason: "v2 IPv6 block is short") }
            let start = body.startIndex
            return (.proxied(
                source: Self.address(Array(body[start..<(start + 16)]), port: body, at: start + 32),
                destination: Self.address(Array(body[(start + 16)..<(start + 32)]), port: body, at: start + 34)
            ), total)
        default:
            // UNSPEC, UNIX or datagram: nothing Ferry can use; the TCP peer stands for the client.
            return (.local, total)
        }
    }

    private static func address(_ bytes: [UInt8], port body: ArraySlice<UInt8>, at index: Int) -> SocketAddress {
        let port = Int(body[index]) << 8 | Int(body[index + 1])
        let text = IPAddressBytes.text(bytes) ?? "0.0.0.0"
        return (try? SocketAddress(ipAddress: text, port: port)) ?? (try! SocketAddress(ipAddress: "0.0.0.0", port: 0))
    }

    /// `a.b.c.d:p` as `[::ffff:a.b.c.d]:p`.
    static func mappedToV6(_ address: SocketAddress) -> SocketAddress {
        guard case .v4 = address, let ip = address.ipAddress, let mapped = try? SocketAddress(ipAddress: "::ffff:" + ip, port: address.port ?? 0) else {
            return address
        }
        return mapped
    }

    /// A PROXY v2 header for a proxied connection, as Ferry sends it to backends (`proxy-protocol=v2`).
    public static func v2Header(source: SocketAddress, destination: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer {
        // An IPv6 client on an IPv4 listener (or the reverse): describe both as IPv6, the IPv4 one mapped.
        var source = source
        var destination = destination
        switch (source, destination) {
        case (.v4, .v6): source = Self.mappedToV6(source)
        case (.v6, .v4): destination = Self.mappedToV6(destination)
        // A client a PROXY header named, on a Unix listener: the listener has no address to give.
        case (.v4, .unixDomainSocket): destination = try! SocketAddress(ipAddress: "0.0.0.0", port: 0)
        case (.v6, .unixDomainSocket): destination = try! SocketAddress(ipAddress: "::", port: 0)
        default: break
        }
        var buffer = allocator.buffer(capacity: 52)
        buffer.writeBytes(Self.v2Signature)
        buffer.writeInteger(UInt8(0x21))  // version 2, PROXY
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            buffer.writeInteger(UInt8(0x11))  // INET, STREAM
            buffer.writeInteger(UInt16(12))
            _ = withUnsafeBytes(of: s.address.sin_addr) { buffer.writeBytes($0) }
            _ = withUnsafeBytes(of: d.address.sin_addr) { buffer.writeBytes($0) }
            buffer.writeInteger(UInt16(source.port ?? 0))
            buffer.writeInteger(UInt16(destination.port ?? 0))
        case (.v6(let s), .v6(let d)):
            buffer.writeInteger(UInt8(0x21))  // INET6, STREAM
            buffer.writeInteger(UInt16(36))
            _ = withUnsafeBytes(of: s.address.sin6_addr) { buffer.writeBytes($0) }
            _ = withUnsafeBytes(of: d.address.sin6_addr) { buffer.writeBytes($0) }
            buffer.writeInteger(UInt16(source.port ?? 0))
            buffer.writeInteger(UInt16(destination.port ?? 0))
        default:
            buffer.writeInteger(UInt8(0x00))  // UNSPEC
            buffer.writeInteger(UInt16(0))
        }
        return buffer
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { self >= "0" && self <= "9" }
}
