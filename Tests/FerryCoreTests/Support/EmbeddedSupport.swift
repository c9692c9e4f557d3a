import Foundation
import Logging
import NIOCore
import NIOEmbedded

@testable import FerryCore

/// Counts the `read()` calls that get through to the head of a pipeline: added first, it sees only the
/// reads every other handler let pass.
final class EmbeddedReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny

    private(set) var reads = 0

    func read(context: ChannelHandlerContext) {
        self.reads += 1
        context.read()
    }
}

/// A WebSocket frame as the relay wrote it (server frames are never masked).
struct EmbeddedFrame: Equatable {
    var fin: Bool
    var opcode: UInt8
    var payload: [UInt8]

    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8

    /// The close code of a close frame with one.
    var closeCode: UInt16? {
        guard self.opcode == Self.close, self.payload.count >= 2 else { return nil }
        return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
    }

    var closeReason: String {
        guard self.opcode == Self.close, self.payload.count > 2 else { return "" }
        return String(decoding: self.payload[2...], as: UTF8.self)
    }
}

enum EmbeddedWire {
    static let logger = Logger(label: "ferry.embedded-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A masked client frame (RFC 6455 §5.3), as a browser sends it.
    static func clientFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8((fin ? 0x80 : 0) | opcode))
        if payload.count < 126 {
            buffer.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeBytes(mask)
        buffer.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return buffer
    }

    static func clientClose(code: UInt16, reason: String = "") -> ByteBuffer {
        var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        payload += Array(reason.utf8)
        return Self.clientFrame(opcode: EmbeddedFrame.close, payload: payload)
    }

    /// Every byte the channel has written so far, in order.
    static func outboundBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    /// Parses the frames the relay wrote to a client (the encoder may write a header and its payload
    /// as two buffers, so the bytes are joined first).
    static func outboundFrames(_ channel: EmbeddedChannel) throws -> [EmbeddedFrame] {
        let bytes = try Self.outboundBytes(channel)
        var frames: [EmbeddedFrame] = []
        var index = 0
        while index < bytes.count {
            guard bytes.count - index >= 2 else { throw ParseError.truncated }
            let fin = bytes[index] & 0x80 != 0
            let opcode = bytes[index] & 0x0F
            let masked = bytes[index + 1] & 0x80 != 0
            var length = Int(bytes[index + 1] & 0x7F)
            index += 2
            if length == 126 {
                guard bytes.count - index >= 2 else { throw ParseError.truncated }
                length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
                index += 2
            } else if length == 127 {
                guard bytes.count - index >= 8 else { throw ParseError.truncated }
                length = bytes[index..<index + 8].reduce(0) { $0 << 8 | Int($1) }
                index += 8
            }
            guard !masked else { throw ParseError.maskedServerFrame }
            guard bytes.count - index >= length else { throw ParseError.truncated }
            frames.append(EmbeddedFrame(fin: fin, opcode: opcode, payload: Array(bytes[index..<index + length])))
            index += length
        }
        return frames
    }

    enum ParseError: Error {
        case truncated
        case maskedServerFrame
        case fileRegion
    }
}

/// An HTTP response as the handshake wrote it.
struct EmbeddedHTTPResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The response the channel has written so far (taken off its outbound side), parsed; nil if none.
    static func written(by channel: EmbeddedChannel) throws -> EmbeddedHTTPResponse? {
        var bytes: [UInt8] = []
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = part else { throw EmbeddedWire.ParseError.fileRegion }
            bytes += buffer.readableBytesView
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return EmbeddedHTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}
