import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// Every answer that is not a 101: plain requests, refusals, and how they are written and logged.
extension HTTPHandshakeHandler {
    func answerPlainRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch self.services.plainRequests.answer(head) {
        case .respond(let status, let contentType, let body, let headers):
            self.respond(status, contentType: contentType, body: body, headers: headers, head: head, context: context)
        case .refuse(let rejection, let level):
            self.refuse(rejection, head: head, context: context, level: level)
        case .files(let files):
            self.move(to: .done, context: context)
            let channel = context.channel
            files.respond(to: head, on: channel).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func refuse(
        _ rejection: HandshakeRejection,
        head: HTTPRequestHead?,
        context: ChannelHandlerContext,
        logger: Logger? = nil,
        level: Logger.Level = .info
    ) {
        let path = head.map { String($0.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }
        guard !self.removed, context.channel.isActive else {
            // Logged as what the client got: nothing (the handshake deadline, or the client, closed first).
            (logger ?? self.logger).debug(
                "connection closed before its answer",
                metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.message)", "path": "\(path ?? "-")"]
            )
            return
        }
        self.services.metrics.handshakeRefused(status: rejection.status.code)
        (logger ?? self.logger).log(
            level: level,
            "handshake refused",
            metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.message)", "path": "\(path ?? "-")"]
        )
        self.respond(
            rejection.status,
            contentType: "text/plain; charset=utf-8",
            body: rejection.message + "\n",
            headers: rejection.headers,
            head: head,
            context: context
        )
    }

    /// Writes a complete response and closes the connection after it.
    func respond(
        _ status: HTTPResponseStatus,
        contentType: String,
        body: String,
        headers extra: HTTPHeaders,
        head: HTTPRequestHead?,
        context: ChannelHandlerContext
    ) {
        guard !self.removed, context.channel.isActive else { return }
        if case .done = self.state { return }
        self.move(to: .done, context: context)
        var headers = extra
        headers.replaceOrAdd(name: "Content-Type", value: contentType)
        headers.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
        headers.replaceOrAdd(name: "Connection", value: "close")
        headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if head?.method != .HEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    static func rejection(for error: Error) -> HandshakeRejection {
        if let rejection = error as? HandshakeRejection { return rejection }
        return HandshakeRejection(.internalServerError, "internal error")
    }
}
