/// Whether an HTTP/2 connection is ending, as its streams' handshakes need to know.
///
/// When a connection error ends a connection, swift-nio-http2 closes the streams it knows, but a
/// stream whose HEADERS came in the same read is activated afterwards and is never told: its
/// handshake would go on to start a session no client can reach. The handshake asks this before it
/// starts one. Used on the connection's event loop only.
final class HTTP2ConnectionStatus {
    private(set) var isEnding = false

    func ending() {
        self.isEnding = true
    }
}

@available(*, unavailable)
extension HTTP2ConnectionStatus: Sendable {}
