/// An IPv4 or IPv6 address block (`10.0.0.0/8`, `fd00::/8`, or one address), matched on raw bytes.
public struct AddressBlock: Sendable, Equatable, CustomStringConvertible {
    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8]
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let bytes = IPAddressBytes.parse(String(first)) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let prefix, (0...(bytes.count * 8)).contains(prefix) else { return nil }
        self.bytes = bytes
        self.prefix = prefix
    }

    public init(bytes: [UInt8], prefix: Int) {
        self.bytes = bytes
        self.prefix = prefix
    }

    /// True if `address` (4 or 16 bytes) lies in the block. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is compared as IPv4.
    public func contains(_ address: [UInt8]) -> Bool {
        var address = address
        if address.count == 16 && self.bytes.count == 4 && address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xFF && address[11] == 0xFF {
            address = Array(address[12...])
        }
        guard address.count == self.bytes.count else { return false }
        var remaining = self.prefix
        for index in 0..<self.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if self.bytes[index] & mask != address[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String {
        "\(IPAddressBytes.text(self.bytes) ?? "?")/\(self.prefix)"
    }
}
