@testable import FerryCore
import NIOCore
import NIOEmbedded

/// `proxy`: the PROXY protocol header a `proxy-protocol` listener reads first: ``ProxyHeaderParser``
/// directly, and ``ProxyProtocolDecoder`` in an `EmbeddedChannel` fed the same bytes cut into reads.
///
/// Input: byte 0 picks how the stream is cut into reads (``Chunks``); the rest is the stream. Checked:
/// - a parsed header's length is within the input, and parsing exactly that many bytes gives the same;
/// - every shorter prefix of a parsed header asks for more bytes (neither a header nor an error);
/// - "needs more" never holds more than a v2 header's 16 + 4096 bytes (no unbounded buffering);
/// - an address pair re-encoded by ``ProxyHeaderParser/v2Header(source:destination:allocator:)`` parses
///   back to the same pair; a v1 TCP4 line is exactly the canonical text of what it parsed to;
/// - the decoder passes on the client address and then exactly the bytes after the header.
enum ProxyTarget {
    static let trusted: [AddressBlock] = [AddressBlock("10.0.0.0/8")!]
    static let peer = try! SocketAddress(ipAddress: "10.0.0.1", port: 50000)

    static func run(_ input: [UInt8]) {
        guard let control = input.first else { return }
        let stream = Array(input.dropFirst())
        let parsed: (ProxyHeader, Int)?
        var failed = false
        do {
            parsed = try ProxyHeaderParser.parse(stream)
        } catch {
            parsed = nil
            failed = true
        }

        trace("proxy: \(failed ? "refused" : parsed.map { "\($0.0), \($0.1) bytes" } ?? "needs more")")
        if let (header, length) = parsed {
            require(length > 0 && length <= stream.count, "header length \(length) outside the \(stream.count) input bytes")
            let exact = try? ProxyHeaderParser.parse(stream[..<length])
            require(exact.map { $0.0 == header && $0.1 == length } ?? false, "the header's own bytes parse differently")
            let prefixes: [Int] = length <= 128 ? Array(0..<length) : Array(0..<17) + [length / 2, length - 2, length - 1]
            for prefix in prefixes {
                let result = Result { () throws(ProxyProtocolError) in try ProxyHeaderParser.parse(stream[..<prefix]) }
                switch result {
                case .success(nil): break
                case .success(let other?): require(false, "a \(prefix)-byte prefix of a \(length)-byte header parses as \(other)")
                case .failure(let error): require(false, "a \(prefix)-byte prefix of a \(length)-byte header is refused: \(error)")
                }
            }
            if case .proxied(let source, let destination) = header {
                Self.checkRoundTrip(source: source, destination: destination)
                if stream.starts(with: Array("PROXY TCP4 ".utf8)) {
                    let canonical = "PROXY TCP4 \(source.ipAddress!) \(destination.ipAddress!) \(source.port!) \(destination.port!)\r\n"
                    require(Array(canonical.utf8) == Array(stream[..<length]), "v1 line \(String(decoding: stream[..<length], as: UTF8.self).debugDescription) parsed as \(canonical.debugDescription)")
                }
            }
        } else if !failed {
            require(stream.count < ProxyHeaderParser.v2MaxLength, "\(stream.count) bytes still 'need more'")
        }

        Self.checkDecoder(stream, control: control, parsed: parsed, failed: failed)
    }

    static func checkRoundTrip(source: SocketAddress, destination: SocketAddress) {
        let encoded = ProxyHeaderParser.v2Header(source: source, destination: destination, allocator: ByteBufferAllocator())
        let bytes = Array(encoded.readableBytesView)
        guard let (again, length) = try? ProxyHeaderParser.parse(bytes) else {
            require(false, "v2Header(\(source), \(destination)) does not parse back")
            return
        }
        require(length == bytes.count, "v2Header is \(bytes.count) bytes, parsed as \(length)")
        require(again == .proxied(source: source, destination: destination), "v2Header(\(source), \(destination)) parses back as \(again)")
    }

    /// Collects what the decoder passes on.
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        var addresses: [SocketAddress] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.bytes += Self.unwrapInboundIn(data).readableBytesView
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let proxied = event as? ProxiedClientAddress { self.addresses.append(proxied.address) }
        }
    }

    static func checkDecoder(_ stream: [UInt8], control: UInt8, parsed: (ProxyHeader, Int)?, failed: Bool) {
        let channel = EmbeddedChannel()
        let collector = Collector()
        channel.remoteAddress = Self.peer
        try! channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ProxyProtocolDecoder(trustedProxies: Self.trusted)))
        try! channel.pipeline.syncOperations.addHandler(collector)
        channel.connect(to: Self.peer, promise: nil)  // active, as an accepted connection is
        var thrown = false
        for chunk in Chunks.split(stream[...], control: control) {
            var buffer = channel.allocator.buffer(capacity: chunk.count)
            buffer.writeBytes(chunk)
            do {
                try channel.writeInbound(buffer)
                // The decoder leaves the pipeline in a task of its own; a real event loop runs it right away.
                channel.embeddedEventLoop.run()
                try channel.throwIfErrorCaught()
            } catch {
                thrown = true
                break
            }
        }
        _ = try? channel.finish()
        if let (header, length) = parsed {
            require(!thrown, "the decoder refused a stream the parser accepts")
            require(collector.bytes == Array(stream[length...]), "the decoder passed on \(collector.bytes.count) bytes, not the \(stream.count - length) after the header")
            if case .proxied(let source, _) = header {
                require(collector.addresses == [source], "the decoder announced \(collector.addresses), not \(source)")
            } else {
                require(collector.addresses.isEmpty, "the decoder announced an address for a LOCAL header")
            }
        } else {
            require(collector.bytes.isEmpty && collector.addresses.isEmpty, "the decoder passed something on without a header")
            if failed { require(thrown, "the decoder accepted a stream the parser refuses") }
        }
    }
}
