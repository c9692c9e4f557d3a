import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// The backend connect of an upgrade: a session slot, a connect bounded by what is left of the
/// handshake budget, and what happens when it ends, runs out, or the client leaves first.
extension HTTPHandshakeHandler {
    func connectBackend(_ plan: UpgradePlan, head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard !self.removed, context.channel.isActive, case .deciding = self.state else { return }
        guard !self.inputClosed else {
            self.refuse(Self.halfClosedUpgrade, head: head, context: context)
            return
        }
        let slot: UInt64
        switch self.services.registry.reserve(address: self.clientKey, tokenFingerprint: plan.tokenFingerprint) {
        case .success(let id):
            slot = id
        case .failure(.full):
            self.refuse(.tooManyConnections, head: head, context: context)
            return
        case .failure(.fullForAddress):
            self.refuse(HandshakeRejection(.serviceUnavailable, "too many connections from this address"), head: head, context: context)
            return
        }
        let started = NIODeadline.now()
        // The connect ends inside the handshake budget, so the client gets a 504 rather than the
        // deadline's bare close when a backend does not answer.
        let budget = (self.httpHandlers.deadline.deadline ?? started + self.services.limits.handshakeTimeout) - started
        guard budget > .zero else {
            self.services.registry.release(slot)
            self.refuse(BackendConnector.Failure.timedOut.rejection, head: head, context: context)
            return
        }
        self.httpHandlers.deadline.allowAnswer(grace: Self.answerGrace)
        // The backend learns the real client before any other byte, TLS handshake included (PROXY v2).
        var proxyHeader: ByteBuffer?
        if plan.route.options.sendsProxyHeader, let source = self.clientAddress, let destination = context.channel.localAddress {
            proxyHeader = ProxyHeaderParser.v2Header(source: source, destination: destination, allocator: context.channel.allocator)
        }
        let attempt = BackendConnectAttempt()
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: budget) {
            // DNS, the connect and a backend TLS handshake together ran past the budget. Answered
            // first: calling the connect off fails its future at once, and that answer is then ignored.
            self.connectFinished(.failure(BackendConnector.Failure.timedOut), plan: plan, head: head, slot: slot, started: started, context: context)
            attempt.cancel()
        }
        guard self.move(to: .connecting(slot: slot, attempt: attempt, budget: timer), context: context) else {
            timer.cancel()
            self.services.registry.release(slot)
            return
        }
        // A pool's targets in its balance order; a token-granted (dynamic) target alone.
        let targets = plan.target == plan.route.target ? self.services.pools.order(plan.route, client: self.clientKey) : [plan.target]
        PoolConnect.connect(
            targets: targets,
            route: plan.route,
            pools: self.services.pools,
            connector: self.services.connector,
            proxyHeader: proxyHeader,
            deadline: started + budget,
            attempt: attempt,
            on: context.eventLoop
        )
            .assumeIsolated()
            .whenComplete { result in
                var connected = plan
                if case .success(let (_, target)) = result { connected.target = target }
                self.connectFinished(result.map(\.0), plan: connected, head: head, slot: slot, started: started, context: context)
            }
    }

    func connectFinished(
        _ result: Result<Channel, Error>,
        plan: UpgradePlan,
        head: HTTPRequestHead,
        slot: UInt64,
        started: NIODeadline,
        context: ChannelHandlerContext
    ) {
        guard case .connecting(let current, _, let budget) = self.state, current == slot else {
            // The client left, or the budget ran out, first: the slot is free already.
            if case .success(let backend) = result { backend.close(promise: nil) }
            return
        }
        budget.cancel()
        self.move(to: .deciding, context: context)
        switch result {
        case .success(let backend):
            guard context.channel.isActive, self.connectionAlive(context: context) else {
                // An HTTP/2 stream whose connection went while its backend connected: nothing will
                // ever read from it (and no channelInactive follows), so no session is started.
                backend.close(promise: nil)
                self.services.registry.release(slot)
                self.logger.debug("client gone before its session started")
                context.close(promise: nil)
                return
            }
            do {
                try self.upgrade(plan, head: head, backend: backend, slot: slot, started: started, context: context)
            } catch {
                backend.close(promise: nil)
                self.services.registry.release(slot)
                self.logger.error("upgrade failed", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            }
        case .failure(let error):
            self.services.registry.release(slot)
            let failure = error as? BackendConnector.Failure ?? .unreachable("\(error)")
            var logger = self.logger
            logger[metadataKey: "target"] = "\(plan.target)"
            switch failure {
            case .unreachable(let why), .tlsFailed(let why): logger[metadataKey: "error"] = "\(why)"
            case .timedOut: break
            }
            self.refuse(failure.rejection, head: head, context: context, logger: logger)
        }
    }

    /// False for an HTTP/2 stream whose connection is ending (see ``HTTP2ConnectionStatus``).
    func connectionAlive(context: ChannelHandlerContext) -> Bool {
        guard let connection = self.httpHandlers.http2Connection else { return true }
        return !connection.isEnding && (context.channel.parent?.isActive ?? false)
    }

    /// The client left while its backend was connecting: the connect is called off and the slot
    /// freed now, not when the connect gives up. Back to `.deciding`: a refusal may still be sent.
    func callOffConnect(why: String, context: ChannelHandlerContext) {
        guard case .connecting(let slot, let attempt, let budget) = self.state else { return }
        self.move(to: .deciding, context: context)
        budget.cancel()
        attempt.cancel()
        self.services.registry.release(slot)
        self.logger.debug("backend connect called off", metadata: ["reason": "\(why)"])
    }
}
