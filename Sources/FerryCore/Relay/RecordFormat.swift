import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// websockify's `--record` file format, which noVNC's playback tools read: a JavaScript array of
/// strings, one per chunk, then `'EOF'`.
///
/// ```
/// var VNC_frame_data = [
/// '{12{RFB 003.008\n',
/// '}40}\x01',
/// 'EOF'];
/// ```
///
/// `'{T{DATA',` is a chunk the relay sent to the client (backend data), `'}T}DATA',` one it received
/// from the client; `T` is whole milliseconds since the session started. `DATA` is escaped as
/// websockify does it, `buf.decode('latin1').encode('unicode_escape').decode('ascii').replace("'", "\\'")`:
/// printable ASCII as is except `\` → `\\` and `'` → `\'`; tab, newline and carriage return as `\t`,
/// `\n`, `\r`; every other byte as `\xNN` (lower-case hex).
///
/// Ferry streams payloads instead of collecting messages, so a line is one chunk as relayed (one read
/// from the backend, or one piece of a client frame's payload), not necessarily one WebSocket message.
/// Playback does not depend on message boundaries.
enum RecordFormat {
    static let header = "var VNC_frame_data = [\n"
    static let footer = "'EOF'];\n"

    enum Direction {
        /// Backend data the relay sends to the client: `'{T{DATA',`.
        case toClient
        /// Client payload the relay passes to the backend: `'}T}DATA',`.
        case fromClient

        var marker: UInt8 {
            switch self {
            case .toClient: return UInt8(ascii: "{")
            case .fromClient: return UInt8(ascii: "}")
            }
        }
    }

    /// A line's length besides its data: quote, two markers, up to 20 digits, quote, comma, newline.
    static let lineOverhead = 26

    /// The longest a line for `count` payload bytes can be (every byte as `\xNN`).
    static func maxLineLength(payloadCount count: Int) -> Int {
        Self.lineOverhead + 4 * count
    }

    /// Appends `'{T{DATA',\n` (or `'}T}DATA',\n`) for `payload`'s readable bytes.
    static func appendLine(_ direction: Direction, milliseconds: Int64, payload: ByteBuffer, to out: inout ByteBuffer) {
        out.reserveCapacity(minimumWritableBytes: Self.maxLineLength(payloadCount: payload.readableBytes))
        out.writeInteger(UInt8(ascii: "'"))
        out.writeInteger(direction.marker)
        out.writeString(String(max(0, milliseconds)))
        out.writeInteger(direction.marker)
        payload.withUnsafeReadableBytes { source in
            guard source.count > 0 else { return }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 * source.count) { destination in
                Self.escape(source, into: destination)
            }
        }
        out.writeString("',\n")
    }

    /// `bytes` escaped as websockify escapes them (see the type's documentation).
    static func escape(_ bytes: [UInt8]) -> String {
        var out = ByteBuffer()
        bytes.withUnsafeBytes { source in
            guard source.count > 0 else { return }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 * source.count) { destination in
                Self.escape(source, into: destination)
            }
        }
        return String(buffer: out)
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// Writes the escaped form of `source` to `destination` (which has room for 4 bytes per byte) and
    /// returns how many bytes were written.
    private static func escape(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        precondition(destination.count >= 4 * source.count)
        let hex = Self.hexDigits.utf8Start
        var index = 0
        for byte in source {
            switch byte {
            case UInt8(ascii: "\\"), UInt8(ascii: "'"):
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = byte
                index += 2
            case 0x20...0x7E:
                destination[index] = byte
                index += 1
            case 0x09, 0x0A, 0x0D:
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = byte == 0x09 ? UInt8(ascii: "t") : byte == 0x0A ? UInt8(ascii: "n") : UInt8(ascii: "r")
                index += 2
            default:
                destination[index] = UInt8(ascii: "\\")
                destination[index + 1] = UInt8(ascii: "x")
                destination[index + 2] = hex[Int(byte >> 4)]
                destination[index + 3] = hex[Int(byte & 0x0F)]
                index += 4
            }
        }
        return index
    }
}
