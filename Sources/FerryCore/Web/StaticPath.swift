/// Turns a request target into a path relative to the `--web` folder, refusing anything that could
/// leave it: `..` segments (also percent-encoded), encoded slashes, backslashes, NUL, and bad escapes.
/// Symbolic links that lead out are caught later, on the real path.
public enum StaticPath {
    public enum Resolution: Equatable, Sendable {
        /// Segments below the folder (empty for the folder itself); `isDirectoryRequest` when the path ends in `/`.
        case file(segments: [String], isDirectoryRequest: Bool)
        case rejected
    }

    public static func resolve(_ requestTarget: String) -> Resolution {
        var path = Substring(requestTarget)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        guard path.hasPrefix("/") else { return .rejected }
        // An encoded slash or backslash would let one segment become two after decoding.
        let lower = path.lowercased()
        if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") { return .rejected }
        guard let decoded = Self.percentDecoded(path) else { return .rejected }
        if decoded.contains("\\") || decoded.utf8.contains(0) { return .rejected }
        var segments: [String] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." || segment.hasPrefix(".") && segment != "." { return .rejected }
            segments.append(String(segment))
        }
        return .file(segments: segments, isDirectoryRequest: decoded.hasSuffix("/"))
    }

    /// Percent-decoding of a path (no `+` rule: that is for queries); nil for a bad escape or non-UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex else { return nil }
                let second = utf8.index(after: first)
                guard second < utf8.endIndex, let high = Self.hex(utf8[first]), let low = Self.hex(utf8[second]) else { return nil }
                bytes.append(high << 4 | low)
                index = utf8.index(after: second)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Content types by file extension, for what browser clients load.
public enum MediaTypes {
    static let byExtension: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "json": "application/json", "map": "application/json",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "webp": "image/webp", "ico": "image/x-icon",
        "wasm": "application/wasm", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf",
        "otf": "font/otf", "txt": "text/plain; charset=utf-8", "xml": "application/xml",
        "webmanifest": "application/manifest+json", "mp3": "audio/mpeg", "oga": "audio/ogg",
        "ogg": "audio/ogg", "wav": "audio/wav", "pdf": "application/pdf",
    ]

    public static func contentType(forFile name: String) -> String {
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return Self.byExtension[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}
