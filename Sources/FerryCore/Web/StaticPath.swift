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
        if decoded.contains("\\") || decoded.utf8.contains(0) { return .rejected }
        var segments: [String] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." || segment.hasPrefix(".") && segment != "." { return .rejected }
            segments.append(String(segment))
        }
        return .file(segments: segments, isDirectoryRequest: decoded.hasSuffix("/"))
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
