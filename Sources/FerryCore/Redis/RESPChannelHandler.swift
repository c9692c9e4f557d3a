import NIOCore

/// One command on its way out, and the promise its reply completes.
struct RESPRequest: Sendable {
    var command: RESPCommand
    var promise: EventLoopPromise<RESPValue>
}

/// Why a Redis command got no reply.
public enum RedisFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case connectionClosed
    case timedOut(command: String)
    /// More commands waiting for replies than ``RESPChannelHandler`` allows.
    case tooManyPending
    case protocolError(RESPReplyParser.Failure)
    /// Redis answered an error to AUTH, SELECT or PSUBSCRIBE while the connection was set up.
    case refused(command: String, message: String)
    case unexpectedReply(command: String)

    public var description: String {
        switch self {
        case .connectionClosed: return "the connection to Redis closed"
        case .timedOut(let command): return "Redis did not answer \(command) in time"
        case .tooManyPending: return "too many Redis commands waiting for replies"
        case .protocolError(let failure): return "Redis sent a malformed reply (\(failure))"
        case .refused(let command, let message): return "Redis refused \(command): \(message)"
        case .unexpectedReply(let command): return "Redis answered \(command) unexpectedly"
        }
    }
}

/// Pipelining on one connection: commands are written as they come, and replies, which Redis sends
/// in the same order, complete the oldest waiting promise. On a subscribed connection the published
/// messages (`pmessage`/`message` arrays) go to `onMessage` instead. Bounded by `maxPending`; a
/// malformed reply or a closed connection fails every waiting promise.
final class RESPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RESPRequest
    typealias OutboundOut = ByteBuffer

    private var parser = RESPReplyParser()
    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    private let maxPending: Int
    private let onMessage: ((RESPValue) -> Void)?

    init(maxPending: Int = 4096, onMessage: ((RESPValue) -> Void)? = nil) {
        self.maxPending = maxPending
        self.onMessage = onMessage
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        guard self.waiting.count < self.maxPending else {
            request.promise.fail(RedisFailure.tooManyPending)
            promise?.fail(RedisFailure.tooManyPending)
            return
        }
        self.waiting.append(request.promise)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        request.command.encode(into: &buffer)
        context.write(self.wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        do {
            while let value = try self.parser.next(&buffer) {
                if let onMessage, Self.isPublished(value) {
                    onMessage(value)
                } else if let promise = self.waiting.popFirst() {
                    promise.succeed(value)
                } else {
                    // A reply nobody asked for: the stream is out of step.
                    self.failAll(RedisFailure.unexpectedReply(command: "-"))
                    context.close(promise: nil)
                    return
                }
            }
        } catch {
            self.failAll(RedisFailure.protocolError(error))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failAll(RedisFailure.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        while let promise = self.waiting.popFirst() { promise.fail(error) }
    }

    /// `["message", channel, payload]` or `["pmessage", pattern, channel, payload]`.
    static func isPublished(_ value: RESPValue) -> Bool {
        guard case .array(let items?) = value, let kind = items.first?.string else { return false }
        return (kind == "pmessage" && items.count == 4) || (kind == "message" && items.count == 3)
    }
}
