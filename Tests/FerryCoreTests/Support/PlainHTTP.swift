// Plain HTTP requests through the WebSocket test client's connection, and PROXY protocol headers
// built by hand (independently of the relay's encoder).

import NIOCore
import NIOPosix

@testable import FerryCore

/// Plain HTTP requests (no upgrade) on a fresh connection.
enum PlainHTTP {
    /// `GET path` (no upgrade headers) on a fresh connection; the response, whatever its status.
    static func get(
        _ address: SocketAddress,
        path: String,
        extraHeaders: [(String, String)] = [],
        timeout: Duration = .seconds(5)
    ) async throws -> HTTPTestResponse {
        let client = try await WSTestClient.open(to: address)
        do {
            var text = "GET \(path) HTTP/1.1\r\nHost: \(self.hostHeader(address))\r\nConnection: close\r\n"
            for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
            text += "\r\n"
            try await client.sendRaw(Array(text.utf8))
            let response = try await client.readResponse(timeout: timeout)
            await client.shutdown()
            return response
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// The `Host` value for `address` (`localhost` for a Unix socket, which has no host or port).
    static func hostHeader(_ address: SocketAddress) -> String {
        switch address {
        case .v6: return "[\(address.ipAddress ?? "::1")]:\(address.port ?? 0)"
        case .v4: return "\(address.ipAddress ?? "127.0.0.1"):\(address.port ?? 0)"
        default: return "localhost"
        }
    }

    /// True if a TCP connection to `address` is accepted (it is closed again at once).
    static func canConnect(_ address: SocketAddress) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: IntegrationLoops.group)
                .connectTimeout(.seconds(2))
                .connect(to: address)
                .get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}

// MARK: - PROXY headers, built by hand

enum PROXYBytes {
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func v1(_ line: String) -> [UInt8] { Array(line.utf8) }

    /// A v2 header: signature, version/command byte, family/transport byte, length, then `body`.
    static func v2(versionCommand: UInt8 = 0x21, familyTransport: UInt8, body: [UInt8], length: Int? = nil) -> [UInt8] {
        let length = length ?? body.count
        return Self.v2Signature + [versionCommand, familyTransport, UInt8(length >> 8), UInt8(length & 0xFF)] + body
    }

    static func v2Inet(source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16, tlvs: [UInt8] = []) -> [UInt8] {
        let body = source + destination + self.port(sourcePort) + self.port(destinationPort) + tlvs
        return self.v2(familyTransport: 0x11, body: body)
    }

    static func v2Inet6(source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16, tlvs: [UInt8] = []) -> [UInt8] {
        let body = source + destination + self.port(sourcePort) + self.port(destinationPort) + tlvs
        return self.v2(familyTransport: 0x21, body: body)
    }

    /// A TLV: type, 16-bit length, value.
    static func tlv(type: UInt8, value: [UInt8]) -> [UInt8] {
        [type, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
    }

    static func port(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xFF)] }

    /// Network-order bytes of an address given as text (IPv4 or IPv6).
    static func address(_ text: String) -> [UInt8] {
        guard let bytes = IPAddressBytes.parse(text) else { preconditionFailure("not an address: \(text)") }
        return bytes
    }
}
