import NIOCore
import NIOWebSocket

/// Turns the bytes a WebSocket client sends into ``WebSocketInbound`` events, streaming: each read's data
/// payload is unmasked into one buffer and passed on before the frame is complete, so memory per
/// connection stays at one read whatever the frame size. Payloads of consecutive data frames in one read
/// are coalesced into a single buffer (the backend sees a byte stream, not messages).
///
/// A protocol violation is fired as a ``WebSocketProtocolError`` (carrying the close code) and every
/// byte after it is dropped.
public final class WebSocketStreamDecoder: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = WebSocketInbound

    private var parser: WebSocketFrameParser
    private var rules: WebSocketMessageRules
    private var controlPayload = ByteBuffer()
    /// What the frame being read is; kept across reads, since a frame's payload can arrive in a later read.
    private var kind = WebSocketMessageRules.FrameKind.data
    private var failed = false
    private let pool: PayloadBufferPool?

    /// - Parameter pool: where to get buffers for bulk payload (see ``PayloadBufferPool``); without
    ///   one every read allocates.
    public init(role: WebSocketFrameParser.Role = .server, maxMessageSize: Int = 0, pool: PayloadBufferPool? = nil) {
        self.parser = WebSocketFrameParser(role: role)
        self.rules = WebSocketMessageRules(maxMessageSize: maxMessageSize)
        self.pool = pool
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.failed else { return }
        var input = Self.unwrapInboundIn(data)
        var output: PayloadBufferPool.Loan? = nil
        do {
            while let event = try self.parser.next(&input) {
                switch event {
                case .header(let header):
                    self.kind = try self.rules.begin(header)
                    if header.isControl { self.controlPayload.clear() }
                case .payload(let piece, let maskKey, let phase):
                    if case .control = self.kind {
                        Self.append(piece, maskKey: maskKey, phase: phase, to: &self.controlPayload)
                        continue
                    }
                    if output == nil { output = self.borrowOutput(size: piece.readableBytes + input.readableBytes, context: context) }
                    let start = output!.buffer.writerIndex
                    Self.append(piece, maskKey: maskKey, phase: phase, to: &output!.buffer)
                    do {
                        let readerIndex = output!.buffer.readerIndex
                        try output!.buffer.withUnsafeReadableBytes { bytes throws(WebSocketProtocolError) in
                            try self.rules.checkData(UnsafeRawBufferPointer(rebasing: bytes[(start - readerIndex)...]))
                        }
                    } catch {
                        output!.buffer.moveWriterIndex(to: start)
                        throw error
                    }
                case .frameEnd:
                    guard case .control(let opcode) = self.kind else {
                        try self.rules.endDataFrame()
                        continue
                    }
                    // Data read before a control frame goes first, so a close never overtakes data.
                    self.flush(&output, context: context)
                    self.kind = .data
                    try self.fireControl(opcode: opcode, context: context)
                }
            }
        } catch {
            self.failed = true
            self.flush(&output, context: context)
            context.fireErrorCaught(error)
            return
        }
        self.flush(&output, context: context)
    }

    /// A buffer for this read's payload: lent by the event loop's pool when there is one.
    private func borrowOutput(size: Int, context: ChannelHandlerContext) -> PayloadBufferPool.Loan {
        if let pool = self.pool { return pool.take(size: size, allocator: context.channel.allocator) }
        return PayloadBufferPool.Loan(buffer: context.channel.allocator.buffer(capacity: size), slot: nil)
    }

    private func fireControl(opcode: UInt8, context: ChannelHandlerContext) throws(WebSocketProtocolError) {
        let payload = self.controlPayload
        switch opcode {
        case 0x8:
            let (code, reason) = try WebSocketClosePayload.parse(payload)
            context.fireChannelRead(Self.wrapInboundOut(.close(code: code, reason: reason)))
        case 0x9:
            context.fireChannelRead(Self.wrapInboundOut(.ping(payload)))
        default:
            context.fireChannelRead(Self.wrapInboundOut(.pong(payload)))
        }
    }

    private static func append(
        _ piece: ByteBuffer,
        maskKey: WebSocketMaskingKey?,
        phase: Int,
        to buffer: inout ByteBuffer
    ) {
        if let maskKey {
            buffer.writeMasked(piece, key: maskKey, phase: phase)
        } else {
            var piece = piece
            buffer.writeBuffer(&piece)
        }
    }

    /// Passes on the payload gathered so far (the pool gets its buffer back first).
    private func flush(_ output: inout PayloadBufferPool.Loan?, context: ChannelHandlerContext) {
        guard let loan = output else { return }
        output = nil
        let buffer = self.pool?.giveBack(loan) ?? loan.buffer
        if buffer.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(.data(buffer)))
        }
    }
}

@available(*, unavailable)
extension WebSocketStreamDecoder: Sendable {}
