import NIOCore
import NIOEmbedded
import Testing

@testable import FerryCore

/// A listener's pipeline on an `EmbeddedChannel`: a read counter at the head (a `read()` that reaches
/// it is an accept), then the ``AcceptGateHandler``. Accepted connections are `EmbeddedChannel`s on the
/// same embedded loop, handed in as the server channel's inbound `Channel` values.
private final class GatedListener {
    let loop = EmbeddedEventLoop()
    let server: EmbeddedChannel
    let accepts = EmbeddedReadCounter()
    let gate: AcceptGate

    /// - Parameter countsAddresses: false for a listener whose peers speak for others (no per-address key).
    init(limit: Int, perAddressLimit: Int = 0, countsAddresses: Bool = true) throws {
        self.gate = AcceptGate(limit: limit, perAddressLimit: perAddressLimit)
        self.server = EmbeddedChannel(loop: self.loop)
        let addressKey: @Sendable (SocketAddress?) -> String? = { countsAddresses ? $0?.ipAddress : nil }
        try self.server.pipeline.syncOperations.addHandlers([self.accepts, AcceptGateHandler(gate: self.gate, addressKey: addressKey)])
    }

    /// A new connection from `ip` goes through the gate, as the listener's acceptor hands it on.
    @discardableResult
    func accept(from ip: String) throws -> EmbeddedChannel {
        let child = EmbeddedChannel(loop: self.loop)
        child.connect(to: try SocketAddress(ipAddress: ip, port: 40000), promise: nil)
        try self.server.writeInbound(child as Channel)
        _ = try self.server.readInbound(as: Channel.self)  // the acceptor's part: it reaches the tail
        self.loop.run()
        return child
    }

    func close(_ child: EmbeddedChannel) {
        child.close(promise: nil)
        self.loop.run()
    }
}

@Suite("Accept gate on EmbeddedChannel")
struct AcceptGateEmbeddedTests {
    @Test("at the limit the listener's read() (its accept) is held, and one close resumes it")
    func limitHoldsAccept() throws {
        let l = try GatedListener(limit: 2)
        l.server.read()
        #expect(l.accepts.reads == 1)

        let first = try l.accept(from: "198.51.100.1")
        try l.accept(from: "198.51.100.2")
        #expect(l.gate.openConnections == 2)
        #expect(first.isActive, "under the limit connections are kept")

        l.server.read()
        l.server.read()
        #expect(l.accepts.reads == 1, "no accept while the gate is full")

        l.close(first)
        #expect(l.gate.openConnections == 1)
        #expect(l.accepts.reads == 2, "the held accept is issued once a connection closes")

        l.server.read()
        #expect(l.accepts.reads == 3)
    }

    @Test("over the per-address limit a connection is closed at once; others and later ones are admitted")
    func perAddressLimit() throws {
        let l = try GatedListener(limit: 10, perAddressLimit: 1)
        let a1 = try l.accept(from: "198.51.100.1")
        let a2 = try l.accept(from: "198.51.100.1")
        let b1 = try l.accept(from: "203.0.113.9")

        #expect(a1.isActive)
        #expect(!a2.isActive, "the second connection from one address is closed at accept")
        #expect(b1.isActive)
        #expect(l.gate.openConnections == 2, "the refused connection is uncounted once closed")

        l.close(a1)
        let a3 = try l.accept(from: "198.51.100.1")
        #expect(a3.isActive, "the address's count is released when its connection closes")
        #expect(l.gate.openConnections == 2)
    }

    @Test("peers with no per-address key (proxies, Unix clients) are not limited per address")
    func uncountedPeers() throws {
        let l = try GatedListener(limit: 10, perAddressLimit: 1, countsAddresses: false)
        let first = try l.accept(from: "198.51.100.1")
        let second = try l.accept(from: "198.51.100.1")
        #expect(first.isActive)
        #expect(second.isActive)
        #expect(l.gate.openConnections == 2)
    }

    @Test("refused connections count against the limit only until they are closed")
    func refusedDoNotHoldTheGate() throws {
        let l = try GatedListener(limit: 2, perAddressLimit: 1)
        try l.accept(from: "198.51.100.1")
        for _ in 0..<5 { try l.accept(from: "198.51.100.1") }
        #expect(l.gate.openConnections == 1)
        l.server.read()
        #expect(l.accepts.reads == 1, "the gate is not full: refused connections were closed")
    }

    @Test("shut(): every later connection is closed at once, earlier ones are kept")
    func shut() throws {
        let l = try GatedListener(limit: 10)
        let before = try l.accept(from: "198.51.100.1")
        l.gate.shut()
        let after1 = try l.accept(from: "198.51.100.2")
        let after2 = try l.accept(from: "198.51.100.3")
        #expect(before.isActive)
        #expect(!after1.isActive)
        #expect(!after2.isActive)
        #expect(l.gate.openConnections == 1)

        l.close(before)
        #expect(l.gate.openConnections == 0)
    }

    @Test("the gate's value logic: counts, holds and resumes without a pipeline")
    func valueLogic() throws {
        let loop = EmbeddedEventLoop()
        let gate = AcceptGate(limit: 1)
        let resumed = ResumeFlag()
        #expect(gate.mayAccept(listener: ObjectIdentifier(resumed), loop: loop) { resumed.set() })

        let child = EmbeddedChannel(loop: loop)
        #expect(gate.accepted(child, address: "198.51.100.1"))
        #expect(gate.openConnections == 1)
        #expect(!gate.mayAccept(listener: ObjectIdentifier(resumed), loop: loop) { resumed.set() })

        child.close(promise: nil)
        loop.run()
        #expect(gate.openConnections == 0)
        #expect(resumed.value, "the held listener's resume runs on its loop")
    }
}

/// A flag the gate's `@Sendable` resume closure sets; only touched on the embedded loop's thread.
private final class ResumeFlag: @unchecked Sendable {
    private(set) var value = false
    func set() { self.value = true }
}
