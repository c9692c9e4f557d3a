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
        guard let decoded = PercentEncoding.decode(path, plusIsSpace: false) else { return .rejected }
        // Checked on bytes, as the file system reads the path: on Characters a combining mark after
        // `/` or `\` (or a prepend mark before it) joins it into one grapheme, and the split and the
        // checks would miss it.
        let bytes = decoded.utf8
        if bytes.contains(UInt8(ascii: "\\")) || bytes.contains(0) { return .rejected }
        var segments: [String] = []
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.elementsEqual(".".utf8) { continue }
            // `..`, and every dot-file or dot-folder (.git, .env), is refused.
            if segment.first == UInt8(ascii: ".") { return .rejected }
            segments.append(String(decoding: segment, as: UTF8.self))
        }
        return .file(segments: segments, isDirectoryRequest: bytes.last == UInt8(ascii: "/"))
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
