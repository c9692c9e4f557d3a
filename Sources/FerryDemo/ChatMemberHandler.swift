import FerryCore
import NIOCore

/// One chat connection: asks for a name, then treats each line as a command or as something said to
/// the room. A member's own lines are not sent back to it: a terminal already shows what was typed,
/// and the demo page shows its own lines itself.
final class ChatMemberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Stage {
        case naming(attemptsLeft: Int)
        case chatting(name: String)
        /// Refused, timed out or quitting: whatever still arrives is ignored.
        case leaving
    }

    private let room: ChatRoom
    private var stage: Stage
    private var partial = ByteBuffer()
    private var rate: LineRateLimit
    /// Set while lines are being dropped, so "slow down" is said once per flood, not once per line.
    private var droppingLines = false
    private var nameDeadline: Scheduled<Void>?

    private var limits: ChatLimits { self.room.limits }

    init(room: ChatRoom) {
        self.room = room
        self.stage = .naming(attemptsLeft: room.limits.nameAttempts)
        self.rate = LineRateLimit(burst: room.limits.lineBurst, perSecond: room.limits.linesPerSecond, now: .now())
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard self.room.admit(context.channel) else {
            self.say(ChatText.full(self.limits), andClose: true, context: context)
            return
        }
        self.say(ChatText.welcome + ChatText.askName(self.limits), context: context)
        self.nameDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.limits.nameTimeout) { [self] in
            if case .naming = self.stage { self.say(ChatText.noName, andClose: true, context: context) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.nameDeadline?.cancel()
        self.stage = .leaving
        if let name = self.room.leave(context.channel) {
            self.room.broadcast(ChatText.left(name), except: nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if case .leaving = self.stage { return }
        self.partial.writeBuffer(&bytes)
        while let newline = self.partial.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = self.partial.readSlice(length: newline - self.partial.readerIndex)!
            self.partial.moveReaderIndex(forwardBy: 1)
            var content = line.readableBytesView[...]
            if content.last == UInt8(ascii: "\r") { content = content.dropLast() }
            guard content.count <= self.limits.maxLineBytes else {
                self.say(ChatText.lineTooLong(self.limits), andClose: true, context: context)
                return
            }
            self.handle(content, context: context)
            if case .leaving = self.stage { return }
        }
        // The newline and a `\r` before it are not counted.
        if self.partial.readableBytes > self.limits.maxLineBytes + 1 {
            self.say(ChatText.lineTooLong(self.limits), andClose: true, context: context)
            return
        }
        self.partial.discardReadBytes()
    }

    private func handle(_ line: ByteBufferView.SubSequence, context: ChannelHandlerContext) {
        switch self.stage {
        case .leaving:
            return
        case .naming(let attemptsLeft):
            self.takeName(String(decoding: line, as: UTF8.self), attemptsLeft: attemptsLeft, context: context)
        case .chatting(let name):
            let text = String(ChatLine.clean(line).trimming { $0 == " " })
            guard !text.isEmpty else { return }
            guard self.rate.allow(at: .now()) else {
                if !self.droppingLines { self.say(ChatText.slowDown, context: context) }
                self.droppingLines = true
                return
            }
            self.droppingLines = false
            if text.hasPrefix("/") {
                self.command(text, context: context)
            } else {
                self.room.broadcast(ChatText.said(name, text), except: context.channel)
            }
        }
    }

    private func takeName(_ line: String, attemptsLeft: Int, context: ChannelHandlerContext) {
        let refusal: String
        switch ChatName.check(line, limits: self.limits) {
        case .failure(let problem):
            refusal = ChatText.nameRefused(problem, limits: self.limits)
        case .success(let name):
            switch self.room.claim(name, for: context.channel) {
            case .taken:
                refusal = ChatText.nameTaken(name)
            case .accepted(let roster):
                self.stage = .chatting(name: name)
                self.nameDeadline?.cancel()
                self.say(ChatText.youAre(name) + ChatText.roster(roster), context: context)
                self.room.broadcast(ChatText.joined(name), except: context.channel)
                return
            }
        }
        if attemptsLeft > 1 {
            self.stage = .naming(attemptsLeft: attemptsLeft - 1)
            self.say(refusal, context: context)
        } else {
            self.say(ChatText.tooManyNames, andClose: true, context: context)
        }
    }

    private func command(_ text: String, context: ChannelHandlerContext) {
        switch text.lowercased() {
        case "/who":
            self.say(ChatText.roster(self.room.roster), context: context)
        case "/quit":
            self.say(ChatText.bye, andClose: true, context: context)
        default:
            self.say(ChatText.help, context: context)
        }
    }

    /// Writes `text` to this member only. A member that has stopped reading is closed rather than
    /// queued for (the same rule as the room's broadcast).
    private func say(_ text: String, andClose close: Bool = false, context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            self.stage = .leaving
            context.close(promise: nil)
            return
        }
        let written = context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: text)))
        if close {
            self.stage = .leaving
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
