import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore
@testable import FerryDemo

/// The demo's chat service over real sockets: the name prompt, who hears what, /who, and the bounds
/// that keep one hostile client from hurting the others.
@Suite("ChatService (demo chat over TCP)")
struct ChatServiceTests {
    @Test("a new connection is greeted and asked for its name in plain text")
    func asksForName() async throws {
        try await ChatTestRoom.with { room in
            let client = try await room.connect()
            #expect(await client.sees("What is your name?"))
            #expect(client.receivedText.hasPrefix("* Welcome to the Ferry demo chat."))
            #expect(client.receivedText.hasSuffix("\n"))
        }
    }

    @Test("a line goes to everyone else under the sender's name, and never back to the sender")
    func noSelfEcho() async throws {
        try await ChatTestRoom.with { room in
            let alice = try await room.join("alice")
            let bob = try await room.join("bob")
            let carol = try await room.join("carol")
            try await alice.send("hello, wörld\n")
            #expect(await bob.sees("alice: hello, wörld\n"))
            #expect(await carol.sees("alice: hello, wörld\n"))
            // Bob answers only after he has the line, so an echo to Alice would have been written
            // before his answer: once she has his answer, she has everything she would ever get.
            try await bob.send("hi\n")
            #expect(await alice.sees("bob: hi\n"))
            #expect(!alice.receivedText.contains("alice: hello"))
            #expect(!bob.receivedText.contains("bob: hi"))
        }
    }

    @Test("joins and leaves are announced; the newcomer gets the roster; /who lists everyone")
    func joinLeaveAndWho() async throws {
        try await ChatTestRoom.with { room in
            let alice = try await room.join("alice")
            let bob = try await room.join("Bob")
            #expect(await alice.sees("* Bob joined\n"))
            #expect(bob.receivedText.contains("* Here now (2): alice, Bob\n"))
            let terminal = try await room.join("terminal user")
            try await terminal.send("/who\n")
            #expect(await terminal.sees("* Here now (3): alice, Bob, terminal user\n* Here now (3): alice, Bob, terminal user\n"))
            #expect(room.service.roster == ["alice", "Bob", "terminal user"])
            try await bob.send("/quit\n")
            #expect(await bob.sees("* Bye.\n"))
            #expect(await alice.sees("* Bob left\n"))
            #expect(await terminal.sees("* Bob left\n"))
            #expect(await Relay.eventually { room.service.roster == ["alice", "terminal user"] })
            try await terminal.send("/nonsense\n")
            #expect(await terminal.sees("* Commands: /who"))
            #expect(!alice.receivedText.contains("/nonsense"))
        }
    }

    @Test("a taken name (in any case) or an unfit one is refused, and another may be tried")
    func namesRefused() async throws {
        var limits = ChatLimits()
        limits.nameAttempts = 6
        try await ChatTestRoom.with(limits) { room in
            _ = try await room.join("alice")
            let client = try await room.connect()
            try await client.send("ALICE\n")
            #expect(await client.sees("* Someone here is already called ALICE; try another name:\n"))
            try await client.send("a: b\n")
            #expect(await client.sees("* A name cannot hold ':'; try another name:\n"))
            try await client.send("* admin\n")
            #expect(await client.sees("* A name cannot hold '*'; try another name:\n"))
            try await client.send(String(repeating: "x", count: 25) + "\n")
            #expect(await client.sees("* That name is longer than 24 characters; try another name:\n"))
            try await client.send("  \r\n")
            #expect(await client.sees("* A name cannot be empty; try another name:\n"))
            try await client.send("Zoë\r\n")
            #expect(await client.sees("* You are Zoë."))
            #expect(room.service.roster == ["alice", "Zoë"])
        }
    }

    @Test("too many refused names end the connection")
    func tooManyNames() async throws {
        var limits = ChatLimits()
        limits.nameAttempts = 2
        try await ChatTestRoom.with(limits) { room in
            let client = try await room.connect()
            try await client.send("\n\n\n")
            #expect(await client.sees("* Too many names tried; bye.\n"))
            #expect(await Relay.eventually { client.isClosed })
            #expect(client.receivedText.components(separatedBy: "try another name").count == 2)
        }
    }

    @Test("no name in time: the slot is given back")
    func nameTimeout() async throws {
        var limits = ChatLimits()
        limits.nameTimeout = .milliseconds(200)
        try await ChatTestRoom.with(limits) { room in
            let client = try await room.connect()
            #expect(await client.sees("* No name given in time; bye.\n"))
            #expect(await Relay.eventually { client.isClosed })
        }
    }

    @Test("a full room turns the next connection away; the members are not disturbed")
    func roomFull() async throws {
        var limits = ChatLimits()
        limits.maxMembers = 2
        try await ChatTestRoom.with(limits) { room in
            let alice = try await room.join("alice")
            let waiting = try await room.connect()
            #expect(await waiting.sees("What is your name?"))
            let third = try await room.connect()
            #expect(await third.sees("* The room is full (2 connections); try again later.\n"))
            #expect(await Relay.eventually { third.isClosed })
            try await waiting.send("bob\n")
            #expect(await alice.sees("* bob joined\n"))
        }
    }

    @Test("a line over the limit, with or without its newline, disconnects only its sender")
    func lineTooLong() async throws {
        var limits = ChatLimits()
        limits.maxLineBytes = 64
        try await ChatTestRoom.with(limits) { room in
            let alice = try await room.join("alice")
            let bob = try await room.join("bob")
            try await bob.send(String(repeating: "y", count: 64) + "\r\n")
            #expect(await alice.sees("bob: " + String(repeating: "y", count: 64) + "\n"))
            let mallory = try await room.join("mallory")
            try await mallory.send(String(repeating: "x", count: 65) + "\n")
            #expect(await mallory.sees("* That line is longer than 64 bytes; bye.\n"))
            #expect(await alice.sees("* mallory left\n"))
            let eve = try await room.join("eve")
            try await eve.send(String(repeating: "x", count: 200))
            #expect(await eve.sees("* That line is longer than 64 bytes; bye.\n"))
            #expect(await Relay.eventually { eve.isClosed && mallory.isClosed })
            #expect(!alice.receivedText.contains("xxx"))
            try await alice.send("still here\n")
            #expect(await bob.sees("alice: still here\n"))
        }
    }

    @Test("control characters and direction overrides are removed before others see a line")
    func linesCleaned() async throws {
        try await ChatTestRoom.with { room in
            let alice = try await room.join("alice")
            let bob = try await room.join("bob")
            try await alice.send("\u{1B}]0;owned\u{07}hi\tthere\u{202E}!\u{7F}\r\n")
            #expect(await bob.sees("alice: ]0;ownedhi there!\n"))
            try await alice.channel.writeAndFlush(ByteBuffer(bytes: [0x61, 0xFF, 0x62, 0x0A])).get()
            #expect(await bob.sees("alice: a\u{FFFD}b\n"))
        }
    }

    @Test("a flood is cut to the burst, and the sender is told once to slow down")
    func floodLimited() async throws {
        var limits = ChatLimits()
        limits.lineBurst = 5
        limits.linesPerSecond = 0
        try await ChatTestRoom.with(limits) { room in
            let alice = try await room.join("alice")
            let flooder = try await room.join("flooder")
            try await flooder.send((1...20).map { "line \($0)\n" }.joined())
            #expect(await flooder.sees("* Slow down: some of your lines were not sent.\n"))
            #expect(await alice.sees("flooder: line 5\n"))
            try await Task.sleep(for: .milliseconds(100))
            #expect(!alice.receivedText.contains("flooder: line 6"))
            #expect(flooder.receivedText.components(separatedBy: "Slow down").count == 2)
        }
    }

    @Test("a member that stops reading is disconnected, not buffered for without end")
    func slowReaderDropped() async throws {
        var limits = ChatLimits()
        limits.maxQueuedBytes = 16 * 1024
        limits.lineBurst = 100_000
        try await ChatTestRoom.with(limits) { room in
            let alice = try await room.join("alice")
            let stalled = try await room.join("stalled", receiveBufferSize: 4096)
            try await stalled.stopReading()
            let line = String(repeating: "z", count: 4000) + "\n"
            // Enough to fill the stalled member's socket buffers (kernel-tuned, a few MiB at most)
            // and then the service's own queue for it.
            for _ in 0..<2000 where room.service.roster.contains("stalled") {
                try await alice.send(line)
            }
            #expect(await alice.sees("* stalled left\n", timeout: .seconds(10)))
            #expect(room.service.roster == ["alice"])
        }
    }
}

@Suite("ChatService pieces")
struct ChatServicePieceTests {
    @Test("names: letters of any script, digits, spaces and . _ - '; bounded in characters and bytes")
    func nameRules() {
        let limits = ChatLimits()
        #expect(ChatName.check("  Zoë O'Neill-2 ", limits: limits) == .success("Zoë O'Neill-2"))
        #expect(ChatName.check("東京", limits: limits) == .success("東京"))
        #expect(ChatName.check("a,b", limits: limits) == .failure(.character(",")))
        #expect(ChatName.check("a\u{1B}b", limits: limits) == .failure(.character("\u{1B}")))
        // 20 characters, each with 5 combining marks: few characters, too many bytes.
        #expect(ChatName.check(String(repeating: "a\u{301}\u{301}\u{301}\u{301}\u{301}", count: 20), limits: limits) == .failure(.tooLong))
        #expect(ChatText.nameRefused(.character("\u{202E}"), limits: limits) == "* A name cannot hold U+202E; try another name:\n")
    }

    @Test("the rate limit allows the burst, then refills at its rate")
    func rateLimit() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var limit = LineRateLimit(burst: 3, perSecond: 2, now: start)
        #expect((0..<5).map { _ in limit.allow(at: start) } == [true, true, true, false, false])
        #expect(limit.allow(at: start + .milliseconds(400)) == false)
        #expect(limit.allow(at: start + .milliseconds(500)) == true)
        #expect(limit.allow(at: start + .seconds(60)) == true)
        #expect(limit.allow(at: start + .seconds(60)) == true)
        #expect(limit.allow(at: start + .seconds(60)) == true)
        #expect(limit.allow(at: start + .seconds(60)) == false)
    }
}

// MARK: - Helpers

/// A chat service on a free port and the clients a test connects to it; all closed when it ends.
final class ChatTestRoom: Sendable {
    let service: ChatService
    let listener: Channel
    private let clients = NIOLockedValueBox<[RawClient]>([])

    private init(service: ChatService, listener: Channel) {
        self.service = service
        self.listener = listener
    }

    static func with(_ limits: ChatLimits = ChatLimits(), _ body: (ChatTestRoom) async throws -> Void) async throws {
        let service = ChatService(group: IntegrationLoops.group, limits: limits)
        let room = ChatTestRoom(service: service, listener: try await service.start(host: "127.0.0.1", port: 0))
        do {
            try await body(room)
        } catch {
            await room.close()
            throw error
        }
        await room.close()
    }

    func connect(receiveBufferSize: Int? = nil) async throws -> RawClient {
        let client = try await RawClient.connect(to: self.listener.localAddress!, receiveBufferSize: receiveBufferSize)
        self.clients.withLockedValue { $0.append(client) }
        return client
    }

    /// A client that has given `name` and been let in.
    func join(_ name: String, receiveBufferSize: Int? = nil) async throws -> RawClient {
        let client = try await self.connect(receiveBufferSize: receiveBufferSize)
        try await client.send(name + "\n")
        try #require(await client.sees("* You are \(name)."), "\(name) was not let in: \(client.receivedText)")
        return client
    }

    private func close() async {
        for client in self.clients.withLockedValue({ $0 }) { await client.close() }
        try? await self.listener.close()
    }
}

extension RawClient {
    /// Whether `text` arrives within `timeout`.
    func sees(_ text: String, timeout: Duration = .seconds(3)) async -> Bool {
        await Relay.eventually(timeout: timeout) { self.receivedText.contains(text) }
    }
}
