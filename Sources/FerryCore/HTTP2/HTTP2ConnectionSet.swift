import NIOConcurrencyHelpers
import NIOCore

/// The open HTTP/2 connections, so a drain can send each its GOAWAY (swift-nio-http2's connection
/// manager does, on `ChannelShouldQuiesceEvent`): clients open no new stream on them, and the
/// sessions already open go on until the drain timeout closes them with 1001, as on HTTP/1.1.
public final class HTTP2ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: Channel]())

    public init() {}

    func add(_ channel: Channel) {
        let key = ObjectIdentifier(channel)
        self.channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in
            self.channels.withLockedValue { _ = $0.removeValue(forKey: key) }
        }
    }

    public var count: Int { self.channels.withLockedValue { $0.count } }

    /// GOAWAY on every connection: no new streams.
    public func quiesceAll() {
        for channel in self.channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}
