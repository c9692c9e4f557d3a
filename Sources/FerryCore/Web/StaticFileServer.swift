import NIOCore
import NIOFileSystem
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves files from the `--web` folder for plain GET and HEAD requests: content types, lengths,
/// `ETag`/`Last-Modified` with 304s, `index.html` for folders, no listings, never anything outside
/// the folder. Files are read with NIOFileSystem (off the event loop) and streamed in 64 KiB chunks,
/// each written before the next is read, so a large file never sits in memory whole.
public struct StaticFileServer: Sendable {
    /// The folder, with symbolic links resolved.
    public let root: String
    public let securityHeaders: Bool

    /// Checks the folder at start-up.
    public init(options: WebOptions) throws(ConfigurationError) {
        guard let resolved = Self.realPath(options.root) else {
            throw ConfigurationError(flag: "--web", value: options.root, problem: "folder not found", expected: "the folder with the browser client, e.g. /usr/share/novnc")
        }
        var info = stat()
        guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ConfigurationError(flag: "--web", value: options.root, problem: "not a folder", expected: "the folder with the browser client")
        }
        self.root = resolved
        self.securityHeaders = options.securityHeaders
    }

    /// What to answer, decided before anything is written.
    enum Answer {
        case file(path: String, size: Int64, modified: time_t, etag: String)
        case notModified(etag: String, modified: time_t)
        case redirect(location: String)
        case notFound
        case badRequest
    }

    /// Writes the whole response for `head` on `channel` (through its HTTP encoder); the future
    /// completes when the last byte is written.
    public func respond(to head: HTTPRequestHead, on channel: Channel) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.completeWithTask {
            let answer = Self.answer(for: head, root: self.root)
            try await self.write(answer, head: head, channel: channel)
        }
        return promise.futureResult
    }

    static func answer(for head: HTTPRequestHead, root: String) -> Answer {
        guard case .file(let segments, let isDirectoryRequest) = StaticPath.resolve(head.uri) else { return .badRequest }
        var path = ([root] + segments).joined(separator: "/")
        var info = stat()
        guard stat(path, &info) == 0 else { return .notFound }
        // A symbolic link (anywhere on the way) must not lead out of the folder: checked before any
        // answer, a redirect included, so a link out is a 404 whatever it points at.
        guard let real = Self.realPath(path), real == root || real.hasPrefix(root + "/") else { return .notFound }
        if info.st_mode & S_IFMT == S_IFDIR {
            if !isDirectoryRequest && !segments.isEmpty {
                // Relative links in the folder's index.html need the trailing slash. The location is
                // built from the checked path with one leading slash: `//name/` would send the browser
                // to a host called `name`.
                let plain = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                let query = plain.count > 1 ? "?" + plain[1] : ""
                return .redirect(location: "/" + plain[0].drop { $0 == "/" } + "/" + query)
            }
            path += "/index.html"
            guard stat(path, &info) == 0 else { return .notFound }
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return .notFound }
        guard let real = Self.realPath(path), real.hasPrefix(root + "/") else { return .notFound }
        #if canImport(Darwin)
        let modified = info.st_mtimespec.tv_sec
        let nanos = info.st_mtimespec.tv_nsec
        #else
        let modified = info.st_mtim.tv_sec
        let nanos = info.st_mtim.tv_nsec
        #endif
        let etag = "\"\(String(info.st_size, radix: 16))-\(String(modified, radix: 16))-\(String(nanos, radix: 16))\""
        if let match = head.headers.first(name: "If-None-Match") {
            if match == "*" || match.split(separator: ",").contains(where: { $0.trimmingSpaces == etag || $0.trimmingSpaces == "W/" + etag }) {
                return .notModified(etag: etag, modified: modified)
            }
        } else if let since = head.headers.first(name: "If-Modified-Since"), let sinceTime = HTTPDate.parse(since), modified <= sinceTime {
            return .notModified(etag: etag, modified: modified)
        }
        return .file(path: real, size: Int64(info.st_size), modified: modified, etag: etag)
    }

    private func write(_ answer: Answer, head: HTTPRequestHead, channel: Channel) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: "close")
        switch answer {
        case .badRequest, .notFound:
            let (status, body) = answer.isBadRequest ? (HTTPResponseStatus.badRequest, "bad path\n") : (.notFound, "not found\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
            if head.method != .HEAD {
                channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(string: body))), promise: nil)
            }
            try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        case .redirect(let location):
            headers.add(name: "Location", value: location)
            headers.add(name: "Content-Length", value: "0")
            try await channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .movedPermanently, headers: headers))).get()
            try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        case .notModified(let etag, let modified):
            headers.add(name: "ETag", value: etag)
            headers.add(name: "Last-Modified", value: HTTPDate.format(modified))
            try await channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .notModified, headers: headers))).get()
            try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        case .file(let path, let size, let modified, let etag):
            let contentType = MediaTypes.contentType(forFile: path)
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: "\(size)")
            headers.add(name: "ETag", value: etag)
            headers.add(name: "Last-Modified", value: HTTPDate.format(modified))
            headers.add(name: "Cache-Control", value: "no-cache")
            if self.securityHeaders { headers.add(name: "X-Content-Type-Options", value: "nosniff") }
            if self.securityHeaders && contentType.hasPrefix("text/html") {
                // No part of the request goes into the policy (a Host of `x; script-src *` would add a
                // directive): 'self' covers same-origin ws:// and wss:// in browsers of CSP Level 3.
                headers.add(
                    name: "Content-Security-Policy",
                    value: "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'"
                )
                headers.add(name: "Referrer-Policy", value: "no-referrer")
            }
            try await channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))).get()
            if head.method != .HEAD && size > 0 {
                try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
                    for try await chunk in file.readChunks(in: 0..<size, chunkLength: .kibibytes(64)) {
                        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(chunk))).get()
                    }
                }
            }
            try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension StaticFileServer.Answer {
    fileprivate var isBadRequest: Bool {
        if case .badRequest = self { return true }
        return false
    }
}


/// HTTP dates (RFC 9110 IMF-fixdate), for `Last-Modified` and `If-Modified-Since`.
enum HTTPDate {
    static func format(_ time: time_t) -> String {
        var seconds = time
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses `Sun, 06 Nov 1994 08:49:37 GMT`; other forms are treated as absent.
    static func parse(_ text: String) -> time_t? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int32(parts[1]), let year = Int32(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let month = months.firstIndex(of: String(parts[2])) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard clock.count == 3 else { return nil }
        var fields = tm()
        fields.tm_year = year - 1900
        fields.tm_mon = Int32(month)
        fields.tm_mday = day
        fields.tm_hour = clock[0]
        fields.tm_min = clock[1]
        fields.tm_sec = clock[2]
        return timegm(&fields)
    }
}
