import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

// A deliberately small WebSocket client for every suite that talks to a relay, independent of the
// relay's code: it writes the HTTP upgrade request itself, parses the raw response, encodes (and
// masks) its own frames with `WSFrameEncoder` (which the unit tests' frame builders use too), and
// decodes the server's frames with its own parser. It answers pings only if told to.

/// The server's answer to the opening request.
struct HTTPTestResponse: Sendable, CustomStringConvertible {
    struct Header: Sendable {
        var name: String
        var value: String
    }

    var status: Int
    var reason: String
    var headers: [Header]
    /// The body of a non-101 response (up to `Content-Length`, or until the connection closed).
    var body: String

    /// Every value of a header, by case-insensitive name.
    func values(_ name: String) -> [String] {
        self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    func value(_ name: String) -> String? { self.values(name).first }

    var description: String { "\(self.status) \(self.reason) \(self.headers.map { "\($0.name): \($0.value)" }) body: \(self.body.debugDescription)" }
}

/// A frame as the server sent it.
struct WSFrame: Sendable, CustomStringConvertible {
    var fin: Bool
    var reservedBits: UInt8
    var opcode: UInt8
    var masked: Bool
    var payload: ByteBuffer

    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    var isData: Bool { self.opcode < 0x8 }

    /// For a close frame: the status code, if the payload carries one.
    var closeCode: UInt16? {
        guard self.opcode == Self.close else { return nil }
        return self.payload.getInteger(at: self.payload.readerIndex, as: UInt16.self)
    }

    /// For a close frame: the reason text after the code.
    var closeReason: String {
        guard self.opcode == Self.close, self.payload.readableBytes > 2 else { return "" }
        return self.payload.getString(at: self.payload.readerIndex + 2, length: self.payload.readableBytes - 2) ?? "<invalid UTF-8>"
    }

    var description: String {
        if self.opcode == Self.close { return "close(\(self.closeCode.map(String.init) ?? "none"), \(self.closeReason.debugDescription))" }
        return "frame(opcode \(self.opcode), fin \(self.fin), \(self.payload.readableBytes) bytes)"
    }
}

/// A close frame received from the server.
struct WSCloseInfo: Sendable, Equatable {
    var code: UInt16?
    var reason: String
}

enum WSClientError: Error, CustomStringConvertible {
    case notUpgraded(HTTPTestResponse)
    case badAccept(expected: String, got: String?)
    case disconnected(while: String)
    case disconnectedWithoutClose
    case unexpectedClose(WSCloseInfo, while: String)
    case unexpectedFrame(WSFrame, while: String)
    case protocolError(String)

    var description: String {
        switch self {
        case .notUpgraded(let response): return "handshake not upgraded: \(response)"
        case .badAccept(let expected, let got): return "Sec-WebSocket-Accept \(got ?? "missing"), expected \(expected)"
        case .disconnected(let what): return "connection closed while \(what)"
        case .disconnectedWithoutClose: return "connection closed without a close frame"
        case .unexpectedClose(let info, let what): return "close frame \(info) while \(what)"
        case .unexpectedFrame(let frame, let what): return "unexpected \(frame) while \(what)"
        case .protocolError(let message): return "client-side protocol error: \(message)"
        }
    }
}

enum WSClientEvent: Sendable {
    case response(HTTPTestResponse)
    case frame(WSFrame)
    case protocolError(String)
    case disconnected
}

final class WSTestClient: Sendable {
    let channel: Channel
    private let events: Mailbox<WSClientEvent>
    private let responseBox = NIOLockedValueBox<HTTPTestResponse?>(nil)
    /// Payload bytes received past what `receiveBytes` asked for, handed out next time.
    private let leftover = NIOLockedValueBox(ByteBuffer())
    /// The key sent in the handshake.
    private let keyBox = NIOLockedValueBox<String?>(nil)

    private init(channel: Channel, events: Mailbox<WSClientEvent>) {
        self.channel = channel
        self.events = events
    }

    /// The handshake response, once read.
    var response: HTTPTestResponse {
        guard let response = self.responseBox.withLockedValue({ $0 }) else { preconditionFailure("no response read yet") }
        return response
    }

    /// The response, if one has been read (``readResponse(timeout:)`` or ``waitForDisconnect(timeout:)``).
    var receivedResponse: HTTPTestResponse? { self.responseBox.withLockedValue { $0 } }

    var isActive: Bool { self.channel.isActive }

    // MARK: Connecting

    /// Opens the TCP connection only; the test writes whatever it likes next.
    static func open(
        to address: SocketAddress,
        autoPong: Bool = true,
        sendBufferSize: Int? = nil,
        receiveBufferSize: Int? = nil
    ) async throws -> WSTestClient {
        let events = Mailbox<WSClientEvent>()
        var bootstrap = ClientBootstrap(group: IntegrationLoops.group)
            .connectTimeout(.seconds(5))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WSClientHandler(events: events, autoPong: autoPong))
                }
            }
        if let sendBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferSize))
        }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap.connect(to: address).get()
        return WSTestClient(channel: channel, events: events)
    }

    /// Opens a connection, sends an upgrade request and reads the response, whatever its status.
    ///
    /// `headers` replace the default header of the same name (case-insensitive) or are added;
    /// `removing` drops default headers. Defaults: Host, Upgrade, Connection, Sec-WebSocket-Key
    /// (random), Sec-WebSocket-Version 13, and Sec-WebSocket-Protocol if `protocols` is given.
    static func connect(
        to relay: RunningRelay,
        path: String = "/",
        method: String = "GET",
        headers: [(String, String)] = [],
        removing: Set<String> = [],
        protocols: [String]? = nil,
        autoPong: Bool = true,
        sendBufferSize: Int? = nil,
        receiveBufferSize: Int? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> WSTestClient {
        let client = try await self.open(
            to: relay.address,
            autoPong: autoPong,
            sendBufferSize: sendBufferSize,
            receiveBufferSize: receiveBufferSize
        )
        do {
            try await client.sendHandshake(path: path, method: method, host: relay.hostHeader, headers: headers, removing: removing, protocols: protocols)
            _ = try await client.readResponse(timeout: timeout)
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Like ``connect(to:path:method:headers:removing:protocols:autoPong:sendBufferSize:receiveBufferSize:timeout:)``
    /// but insists on a 101 with the right `Sec-WebSocket-Accept`.
    static func upgrade(
        _ relay: RunningRelay,
        path: String = "/",
        headers: [(String, String)] = [],
        protocols: [String]? = nil,
        autoPong: Bool = true,
        sendBufferSize: Int? = nil,
        receiveBufferSize: Int? = nil
    ) async throws -> WSTestClient {
        let client = try await self.connect(
            to: relay,
            path: path,
            headers: headers,
            protocols: protocols,
            autoPong: autoPong,
            sendBufferSize: sendBufferSize,
            receiveBufferSize: receiveBufferSize
        )
        do {
            try client.checkUpgraded()
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Throws unless the response was a 101 whose accept value matches the key sent.
    func checkUpgraded() throws {
        let response = self.response
        guard response.status == 101 else { throw WSClientError.notUpgraded(response) }
        if let key = self.keyBox.withLockedValue({ $0 }) {
            let expected = Self.expectedAccept(forKey: key)
            let got = response.value("Sec-WebSocket-Accept")
            guard got == expected else { throw WSClientError.badAccept(expected: expected, got: got) }
        }
    }

    func sendHandshake(
        path: String,
        method: String = "GET",
        host: String,
        headers custom: [(String, String)] = [],
        removing: Set<String> = [],
        protocols: [String]? = nil
    ) async throws {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var headers: [(String, String)] = [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if let protocols { headers.append(("Sec-WebSocket-Protocol", protocols.joined(separator: ", "))) }
        let removed = Set(removing.map { $0.lowercased() } + custom.map { $0.0.lowercased() })
        headers.removeAll { removed.contains($0.0.lowercased()) }
        headers.append(contentsOf: custom)
        let sentKey = headers.first { $0.0.lowercased() == "sec-websocket-key" }?.1
        self.keyBox.withLockedValue { $0 = sentKey }
        var text = "\(method) \(path) HTTP/1.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        try await self.sendRaw(Array(text.utf8))
    }

    /// Reads the response head (and body, when it is not a 101).
    func readResponse(timeout: Duration = .seconds(5)) async throws -> HTTPTestResponse {
        switch try await self.events.next(timeout: timeout, what: "the HTTP response") {
        case .response(let response):
            self.responseBox.withLockedValue { $0 = response }
            return response
        case .protocolError(let message):
            throw WSClientError.protocolError(message)
        case .frame(let frame):
            throw WSClientError.unexpectedFrame(frame, while: "reading the HTTP response")
        case .disconnected, nil:
            throw WSClientError.disconnected(while: "reading the HTTP response")
        }
    }

    // MARK: Sending

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await self.sendRaw(ByteBuffer(bytes: bytes))
    }

    /// Writes bytes and waits until the kernel has taken them. A write still pending after `timeout`
    /// (a peer that stopped reading) closes the connection and throws ``IntegrationTimeout``.
    func sendRaw(_ buffer: ByteBuffer, timeout: Duration = .seconds(30)) async throws {
        let timedOut = NIOLockedValueBox(false)
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            try await channel.writeAndFlush(buffer).get()
        } catch where timedOut.withLockedValue({ $0 }) {
            throw IntegrationTimeout(what: "the peer to take \(buffer.readableBytes) bytes")
        }
    }

    /// Sends one frame, masked with a random key unless `masked` is false.
    func sendFrame(opcode: UInt8, payload: ByteBuffer, fin: Bool = true, reservedBits: UInt8 = 0, masked: Bool = true) async throws {
        let key: [UInt8]? = masked ? (0..<4).map { _ in UInt8.random(in: 0...255) } : nil
        try await self.sendRaw(WSFrameEncoder.encode(fin: fin, reservedBits: reservedBits, opcode: opcode, payload: payload, maskKey: key))
    }

    func send(binary payload: ByteBuffer) async throws {
        try await self.sendFrame(opcode: WSFrame.binary, payload: payload)
    }

    func send(binary payload: [UInt8]) async throws {
        try await self.send(binary: ByteBuffer(bytes: payload))
    }

    func send(text: String) async throws {
        try await self.sendFrame(opcode: WSFrame.text, payload: ByteBuffer(string: text))
    }

    /// Sends a close frame (no code if `code` is nil).
    func sendClose(code: UInt16? = 1000, reason: String = "") async throws {
        var payload = ByteBuffer()
        if let code {
            payload.writeInteger(code)
            payload.writeString(reason)
        }
        try await self.sendFrame(opcode: WSFrame.close, payload: payload)
    }

    /// Sends a close frame and waits for the server's close frame; returns it.
    func close(code: UInt16? = 1000, reason: String = "", timeout: Duration = .seconds(5)) async throws -> WSCloseInfo {
        try await self.sendClose(code: code, reason: reason)
        return try await self.waitForClose(timeout: timeout)
    }

    /// Stops reading from the socket (the server's writes then back up), or starts again.
    func setReading(_ reading: Bool) async throws {
        try await self.channel.setOption(.autoRead, value: reading).get()
    }

    /// Resets the TCP connection (RST, via SO_LINGER 0) instead of closing it in order.
    func abort() async {
        if let provider = self.channel as? SocketOptionProvider {
            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await self.channel.close()
    }

    /// Closes the TCP connection; never throws.
    func shutdown() async {
        try? await self.channel.close()
    }

    // MARK: Receiving

    /// The next frame of any kind (pings included). Throws on timeout or if the connection closed.
    func receiveFrame(timeout: Duration = .seconds(5)) async throws -> WSFrame {
        switch try await self.events.next(timeout: timeout, what: "a frame") {
        case .frame(let frame):
            return frame
        case .protocolError(let message):
            throw WSClientError.protocolError(message)
        case .response(let response):
            throw WSClientError.protocolError("second HTTP response \(response)")
        case .disconnected, nil:
            throw WSClientError.disconnected(while: "waiting for a frame")
        }
    }

    /// Exactly `count` payload bytes of data frames, concatenated (bytes beyond `count` are kept for
    /// the next call). Control frames other than close are skipped; a close frame throws.
    func receiveBytes(count: Int, timeout: Duration = .seconds(10)) async throws -> ByteBuffer {
        var result = self.leftover.withLockedValue { leftover -> ByteBuffer in
            defer { leftover = ByteBuffer() }
            return leftover
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while result.readableBytes < count {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { throw IntegrationTimeout(what: "\(count) bytes (got \(result.readableBytes))") }
            let what = "\(count) bytes (got \(result.readableBytes))"
            let frame: WSFrame
            do {
                frame = try await self.receiveFrame(timeout: left)
            } catch is IntegrationTimeout {
                throw IntegrationTimeout(what: what)
            } catch WSClientError.disconnected {
                throw WSClientError.disconnected(while: "waiting for \(what)")
            }
            if frame.opcode == WSFrame.close {
                throw WSClientError.unexpectedClose(WSCloseInfo(code: frame.closeCode, reason: frame.closeReason), while: "waiting for \(what)")
            }
            guard frame.isData else { continue }
            var payload = frame.payload
            result.writeBuffer(&payload)
        }
        if result.readableBytes > count {
            let extra = result.getSlice(at: result.readerIndex + count, length: result.readableBytes - count)!
            self.leftover.withLockedValue { $0 = extra }
            result = result.getSlice(at: result.readerIndex, length: count)!
        }
        return result
    }

    /// Waits for the server's close frame, skipping data and other control frames.
    /// Throws ``WSClientError/disconnectedWithoutClose`` if the connection ends first.
    func waitForClose(timeout: Duration = .seconds(5)) async throws -> WSCloseInfo {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { throw IntegrationTimeout(what: "a close frame") }
            let frame: WSFrame
            do {
                frame = try await self.receiveFrame(timeout: left)
            } catch WSClientError.disconnected {
                throw WSClientError.disconnectedWithoutClose
            } catch is IntegrationTimeout {
                throw IntegrationTimeout(what: "a close frame")
            }
            if frame.opcode == WSFrame.close { return WSCloseInfo(code: frame.closeCode, reason: frame.closeReason) }
        }
    }

    /// Waits until the TCP connection is closed by the server; returns the frames that came before.
    func waitForDisconnect(timeout: Duration = .seconds(5)) async throws -> [WSFrame] {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var frames: [WSFrame] = []
        while true {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { throw IntegrationTimeout(what: "the server to close the connection") }
            switch try await self.events.next(timeout: left, what: "the server to close the connection") {
            case .frame(let frame): frames.append(frame)
            case .response(let response): self.responseBox.withLockedValue { $0 = response }
            case .protocolError: continue
            case .disconnected, nil: return frames
            }
        }
    }
}

// MARK: - Frame encoding

enum WSFrameEncoder {
    /// One frame: header, then the payload XOR-ed with `maskKey` if given.
    static func encode(fin: Bool = true, reservedBits: UInt8 = 0, opcode: UInt8, payload: ByteBuffer, maskKey: [UInt8]?) -> ByteBuffer {
        let length = payload.readableBytes
        var frame = ByteBuffer()
        frame.reserveCapacity(14 + length)
        frame.writeInteger((fin ? 0x80 : 0) | (reservedBits & 0x70) | (opcode & 0x0F), as: UInt8.self)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        if length < 126 {
            frame.writeInteger(maskBit | UInt8(length), as: UInt8.self)
        } else if length <= 0xFFFF {
            frame.writeInteger(maskBit | 126, as: UInt8.self)
            frame.writeInteger(UInt16(length))
        } else {
            frame.writeInteger(maskBit | 127, as: UInt8.self)
            frame.writeInteger(UInt64(length))
        }
        guard let maskKey else {
            var payload = payload
            frame.writeBuffer(&payload)
            return frame
        }
        precondition(maskKey.count == 4)
        frame.writeBytes(maskKey)
        let start = frame.writerIndex
        var payloadCopy = payload
        frame.writeBuffer(&payloadCopy)
        Self.mask(&frame, from: start, count: length, key: maskKey)
        return frame
    }

    /// The same frame as an array, for tests that feed a parser or decoder directly.
    static func bytes(fin: Bool = true, reservedBits: UInt8 = 0, opcode: UInt8, payload: [UInt8], maskKey: [UInt8]?) -> [UInt8] {
        let frame = Self.encode(fin: fin, reservedBits: reservedBits, opcode: opcode, payload: ByteBuffer(bytes: payload), maskKey: maskKey)
        return Array(frame.readableBytesView)
    }

    /// XORs `count` bytes at writer-relative index `start` with the repeating 4-byte key.
    static func mask(_ buffer: inout ByteBuffer, from start: Int, count: Int, key: [UInt8]) {
        guard count > 0 else { return }
        // The key repeated to 8 bytes, in memory order.
        var keyWord: UInt64 = 0
        withUnsafeMutableBytes(of: &keyWord) { raw in
            for index in 0..<8 { raw[index] = key[index % 4] }
        }
        let base = start - buffer.readerIndex
        buffer.withUnsafeMutableReadableBytes { raw in
            var index = 0
            while index + 8 <= count {
                let word = raw.loadUnaligned(fromByteOffset: base + index, as: UInt64.self)
                raw.storeBytes(of: word ^ keyWord, toByteOffset: base + index, as: UInt64.self)
                index += 8
            }
            while index < count {
                raw[base + index] ^= key[index % 4]
                index += 1
            }
        }
    }
}

// MARK: - The channel handler

/// Parses the response head, then the server's frames; forwards everything to the mailbox.
private final class WSClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case head
        case body(HTTPTestResponse, remaining: Int?)
        case frames
        case failed
    }

    private static let maxHead = 64 * 1024
    private static let maxFramePayload = 64 * 1024 * 1024

    private let events: Mailbox<WSClientEvent>
    private let autoPong: Bool
    private var phase = Phase.head
    private var cumulation = ByteBuffer()

    init(events: Mailbox<WSClientEvent>, autoPong: Bool) {
        self.events = events
        self.autoPong = autoPong
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if self.cumulation.readableBytes == 0 {
            self.cumulation = incoming
        } else {
            self.cumulation.writeBuffer(&incoming)
        }
        self.process(context: context)
        if self.cumulation.readableBytes == 0 {
            self.cumulation = ByteBuffer()
        } else {
            self.cumulation.discardReadBytes()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .body(var response, _) = self.phase {
            response.body += self.cumulation.readString(length: self.cumulation.readableBytes) ?? ""
            self.events.push(.response(response))
        }
        self.phase = .failed
        self.events.push(.disconnected)
        self.events.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func fail(_ message: String, context: ChannelHandlerContext) {
        self.phase = .failed
        self.events.push(.protocolError(message))
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext) {
        while true {
            switch self.phase {
            case .head:
                guard self.parseHead(context: context) else { return }
            case .body(var response, let remaining):
                let available = self.cumulation.readableBytes
                let take = min(remaining ?? available, available)
                response.body += self.cumulation.readString(length: take) ?? ""
                if let remaining, remaining - take == 0 {
                    self.phase = .failed  // nothing more is expected on this connection
                    self.events.push(.response(response))
                } else {
                    self.phase = .body(response, remaining: remaining.map { $0 - take })
                }
                return
            case .frames:
                guard let frame = self.parseFrame(context: context) else { return }
                if frame.masked {
                    self.fail("masked frame from the server", context: context)
                    return
                }
                if frame.opcode == WSFrame.ping && self.autoPong {
                    let pong = WSFrameEncoder.encode(opcode: WSFrame.pong, payload: frame.payload, maskKey: [0x12, 0x34, 0x56, 0x78])
                    context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
                }
                self.events.push(.frame(frame))
            case .failed:
                self.cumulation.moveReaderIndex(forwardBy: self.cumulation.readableBytes)
                return
            }
        }
    }

    /// Returns true if a head was parsed (the phase changed).
    private func parseHead(context: ChannelHandlerContext) -> Bool {
        let view = self.cumulation.readableBytesView
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = view.firstRange(of: terminator) else {
            if view.count > Self.maxHead { self.fail("response head too long", context: context) }
            return false
        }
        let headLength = end.upperBound - view.startIndex
        let text = self.cumulation.readString(length: headLength) ?? ""
        var lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard !lines.isEmpty else {
            self.fail("empty response head", context: context)
            return true
        }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            self.fail("bad status line \(statusLine.debugDescription)", context: context)
            return true
        }
        var headers: [HTTPTestResponse.Header] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                self.fail("bad header line \(line.debugDescription)", context: context)
                return true
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers.append(.init(name: String(line[..<colon]), value: value))
        }
        let response = HTTPTestResponse(
            status: status,
            reason: parts.count > 2 ? String(parts[2]) : "",
            headers: headers,
            body: ""
        )
        if status == 101 {
            self.phase = .frames
            self.events.push(.response(response))
        } else {
            self.phase = .body(response, remaining: response.value("Content-Length").flatMap { Int($0) })
        }
        return true
    }

    private func parseFrame(context: ChannelHandlerContext) -> WSFrame? {
        let buffer = self.cumulation
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 2,
            let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        var index = start + 2
        var length = UInt64(second & 0x7F)
        if length == 126 {
            guard let value = buffer.getInteger(at: index, as: UInt16.self) else { return nil }
            length = UInt64(value)
            index += 2
        } else if length == 127 {
            guard let value = buffer.getInteger(at: index, as: UInt64.self) else { return nil }
            length = value
            index += 8
        }
        let masked = second & 0x80 != 0
        var key: [UInt8]? = nil
        if masked {
            guard let bytes = buffer.getBytes(at: index, length: 4) else { return nil }
            key = bytes
            index += 4
        }
        guard length <= UInt64(Self.maxFramePayload) else {
            self.fail("frame of \(length) bytes from the server", context: context)
            return nil
        }
        guard var payload = buffer.getSlice(at: index, length: Int(length)) else { return nil }
        self.cumulation.moveReaderIndex(to: index + Int(length))
        if let key {
            var copy = ByteBuffer()
            copy.writeImmutableBuffer(payload)
            payload = copy
            WSFrameEncoder.mask(&payload, from: payload.readerIndex, count: payload.readableBytes, key: key)
        }
        return WSFrame(fin: first & 0x80 != 0, reservedBits: first & 0x70, opcode: first & 0x0F, masked: masked, payload: payload)
    }
}

// MARK: - Sec-WebSocket-Accept

extension WSTestClient {
    /// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)), computed here rather than by the relay's code.
    static func expectedAccept(forKey key: String) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }
}
