import NIOCore

/// What a benchmark run measures, and how much.
public struct BenchOptions: Sendable {
    public enum Scenario: String, CaseIterable, Sendable {
        case throughput, latency, idle, handshakes, stall, bigframe, unmask, tls, hostile, client, auth, http2
    }

    /// The relays measured next to plain TCP; the first is the one targets are checked on.
    public var relays: [RelayLauncher]
    /// Plain TCP relays (e.g. socat) measured in the throughput and latency runs with a plain TCP
    /// client: what one more hop costs by itself, without WebSocket, so a relay's figures can be
    /// read against the floor any relay on this machine pays.
    public var tcpRelays: [RelayLauncher] = []
    /// Client ends (`ferry connect --listen`, websocat's `tcp-l:`) measured in front of the first relay
    /// in the client scenario: `{port}` is their local port, `{target}` the relay's address.
    public var clients: [RelayLauncher] = []
    /// The `ferry` executable the auth scenario starts with its own flags (a token file, `--auth-url`,
    /// `--token-redis`); without it that scenario is skipped.
    public var ferryExecutable: String?
    /// The handshakes scenario's floor: ``MinimalWebSocketRelay`` as a process of its own.
    public var floorRelay: RelayLauncher?
    /// `redis-server`, for the auth scenario's `--token-redis` row; without it the row is skipped.
    public var redisServer: String?
    /// Idle local sessions opened through each client end to read its memory per session.
    public var clientIdleSessions = 1000
    public var scenarios: [Scenario] = Scenario.allCases
    /// Bytes per direction in the throughput runs (split over the connections in the parallel run).
    public var bulkBytes = 1 << 30
    public var messageSize = 64 * 1024
    public var parallelConnections = 16
    public var echoCount = 20_000
    public var echoSize = 64
    public var idleSteps = [1000, 2000, 5000, 10_000]
    public var sequentialHandshakes = 2000
    public var parallelHandshakeClients = 50
    public var handshakesPerClient = 100
    /// Upper bound on each handshake loop, whatever the counts.
    public var handshakeSeconds = TimeAmount.seconds(5)
    public var stallSeconds = 10
    /// Hostile clients: how many clients ask for data and never read it, and how many sessions a
    /// burst opens (and closes) before the relay's memory is read again after it.
    public var nonReadingClients = 100
    public var burstSessions = 2000
    /// How long after a burst the relay's memory is read again (the relay checks every 5 s whether
    /// to give freed memory back).
    public var afterBurstWait = TimeAmount.seconds(12)
    public var bigFrameBytes = 1 << 30
    /// Whole runs to make; each figure reported is the median over the runs.
    public var runs = 1
    /// Bytes unmasked per pass in the unmask micro-benchmark, and passes.
    public var unmaskBytes = 16 << 20
    public var unmaskPasses = 64
    /// A relay whose memory passes this during the idle ramp is not ramped further (websockify forks a
    /// process per connection).
    public var idleMemoryCeiling: UInt64 = 3 << 30
    /// The relay's `--buffer-size`, for the stalled-reader bound (the template must pass the same value).
    public var relayBufferSize = 256 * 1024
    /// Idle sessions opened over HTTP/1.1 and then as HTTP/2 streams (100 per connection) in the
    /// http2 scenario, for the memory per session.
    public var http2IdleSessions = 1000

    public init(relays: [RelayLauncher]) {
        self.relays = relays
    }

    /// Tiny sizes, a few seconds in all: proves the tool works (`swift test` runs this).
    public static func quick(relays: [RelayLauncher]) -> BenchOptions {
        var options = BenchOptions(relays: relays)
        options.bulkBytes = 4 << 20
        options.parallelConnections = 4
        options.echoCount = 200
        options.idleSteps = [50]
        options.clientIdleSessions = 20
        options.http2IdleSessions = 20
        options.sequentialHandshakes = 50
        options.parallelHandshakeClients = 5
        options.handshakesPerClient = 10
        options.stallSeconds = 1
        options.nonReadingClients = 5
        options.burstSessions = 50
        options.afterBurstWait = .milliseconds(200)
        options.bigFrameBytes = 8 << 20
        options.unmaskBytes = 1 << 20
        options.unmaskPasses = 4
        return options
    }
}
