import NIOCore
import NIOSSL
import NIOTLS

/// Client TLS contexts for `tls://` backends, built once at start-up: one that verifies the backend
/// (system trust store plus `--backend-ca`, hostname checked against the route's host), and one for
/// routes marked `tls-verify=false`.
public struct BackendTLSContexts: Sendable {
    public let verifying: NIOSSLContext
    public let unverified: NIOSSLContext

    public init(options: BackendTLSOptions) throws(ConfigurationError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let path = options.extraCAPath {
            do {
                configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(path))]
            } catch {
                throw ConfigurationError(flag: "--backend-ca", value: path, problem: "not a PEM certificate (\(error))")
            }
        }
        var unverified = configuration
        unverified.certificateVerification = .none
        do {
            self.verifying = try NIOSSLContext(configuration: configuration)
            self.unverified = try NIOSSLContext(configuration: unverified)
        } catch {
            throw ConfigurationError(flag: "--backend-ca", value: options.extraCAPath ?? "", problem: "cannot build a TLS context (\(error))")
        }
    }
}

/// Holds a new TLS backend connection until its handshake is done, so a failed handshake becomes a 502
/// before the client is upgraded. Auto-read is off on backend channels, so it asks for the reads the
/// handshake needs; bytes the backend sends right after the handshake are kept and passed on when the
/// handler leaves the pipeline (after the session's backend handler is in place).
final class BackendTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let done: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var completed = false
    private var early: ByteBuffer?
    private var timer: Scheduled<Void>?

    /// - Parameter timeout: a backend that has not finished its TLS handshake by then is given up on.
    init(done: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.done = done
        self.timeout = timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        let done = self.done
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            done.fail(ChannelError.connectTimeout(self.timeout))
            context.close(promise: nil)
        }
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if self.early == nil {
            self.early = bytes
        } else {
            self.early!.writeBuffer(&bytes)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !self.completed { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.completed = true
            self.timer?.cancel()
            self.done.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.done.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        if let early, early.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(early))
            context.fireChannelReadComplete()
        }
        self.early = nil
    }
}

@available(*, unavailable)
extension BackendTLSHandshakeHandler: Sendable {}
