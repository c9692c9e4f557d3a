import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

extension IntegrationTests {
    /// Bytes through the relay and back, over real sockets.
    @Suite("Data")
    struct DataTransfer {
        /// A short message sent after the payload under test, so an empty payload is checked too
        /// (nothing may come back for it) and the session is shown to still work afterwards.
        static let sentinel: [UInt8] = Array("--end--".utf8)

        @Test("bytes come back intact through an echo backend", arguments: [0, 1, 125, 126, 65_535, 65_536, 1 << 20])
        func echoIntact(size: Int) async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: UInt64(size) &+ 7)
                try await client.send(binary: pattern.buffer(at: 0, count: size))
                try await client.send(binary: Self.sentinel)
                let echoed = try await client.receiveBytes(count: size + Self.sentinel.count, timeout: .seconds(10))
                #expect(pattern.matches(echoed.getSlice(at: echoed.readerIndex, length: size)!, at: 0))
                #expect(echoed.getBytes(at: echoed.readerIndex + size, length: Self.sentinel.count) == Self.sentinel)
                let reply = try await client.close(code: 1000)
                #expect(reply.code == 1000)
                _ = try await client.waitForDisconnect()
            }
        }

        @Test("a message in fragments and text messages arrive as one byte stream")
        func fragmentedAndText() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                // "héllo €" split inside both multi-byte characters.
                let text = Array("héllo €uro".utf8)
                try await client.sendFrame(opcode: WSFrame.text, payload: ByteBuffer(bytes: text[0..<2]), fin: false)
                try await client.sendFrame(opcode: WSFrame.continuation, payload: ByteBuffer(bytes: text[2..<8]), fin: false)
                // A ping between fragments is allowed and does not disturb the message.
                try await client.sendFrame(opcode: WSFrame.ping, payload: ByteBuffer(string: "p"))
                try await client.sendFrame(opcode: WSFrame.continuation, payload: ByteBuffer(bytes: text[8...]), fin: true)
                var pong: WSFrame?
                var received = ByteBuffer()
                while received.readableBytes < text.count || pong == nil {
                    var frame = try await client.receiveFrame()
                    if frame.opcode == WSFrame.pong {
                        pong = frame
                    } else {
                        #expect(frame.opcode == WSFrame.binary, "the relay sends backend bytes as binary messages")
                        received.writeBuffer(&frame.payload)
                    }
                }
                #expect(Array(received.readableBytesView) == text)
                #expect(pong.map { String(buffer: $0.payload) } == "p")
                _ = try await client.close()
            }
        }

        @Test("a 64 MiB stream of 64 KiB messages, read while writing, arrives intact and in order")
        func largeStream() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 64)
                let chunk = 64 * 1024
                let total = 64 * 1024 * 1024
                let clock = ContinuousClock()
                let started = clock.now
                async let sent: Void = {
                    var offset = 0
                    while offset < total {
                        try await client.send(binary: pattern.buffer(at: offset, count: chunk))
                        offset += chunk
                    }
                }()
                var offset = 0
                var mismatchAt: Int?
                var frames = 0
                var largest = 0
                while offset < total {
                    let frame: WSFrame
                    do {
                        frame = try await client.receiveFrame(timeout: .seconds(15))
                    } catch {
                        await client.shutdown()  // fails a send that may be stuck, so `sent` ends
                        throw error
                    }
                    guard frame.isData else {
                        Issue.record("unexpected \(frame) at offset \(offset)")
                        break
                    }
                    if mismatchAt == nil && !pattern.matches(frame.payload, at: offset) { mismatchAt = offset }
                    if frame.opcode != WSFrame.binary || !frame.fin || frame.reservedBits != 0 {
                        Issue.record("relay frames are final binary frames without reserved bits; got \(frame)")
                        break
                    }
                    offset += frame.payload.readableBytes
                    largest = max(largest, frame.payload.readableBytes)
                    frames += 1
                }
                if offset < total { await client.shutdown() }
                try await sent
                #expect(offset == total)
                #expect(mismatchAt == nil, "echoed bytes differ from what was sent in the frame at offset \(mismatchAt ?? -1)")
                let elapsed = clock.now - started
                print("64 MiB echoed in \(elapsed) as \(frames) frames, the largest \(largest) bytes")
                let reply = try await client.close()
                #expect(reply.code == 1000)
            }
        }

        @Test("a frame sent in the same packet as the upgrade request is relayed")
        func frameRightAfterRequest() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.open(to: relay.address)
                let key = "dGhlIHNhbXBsZSBub25jZQ=="
                var packet = ByteBuffer(
                    string: "GET / HTTP/1.1\r\nHost: \(relay.hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                var frame = WSFrameEncoder.encode(opcode: WSFrame.binary, payload: ByteBuffer(string: "early bird"), maskKey: [1, 2, 3, 4])
                packet.writeBuffer(&frame)
                try await client.sendRaw(packet)
                let response = try await client.readResponse()
                #expect(response.status == 101)
                // A frame sent together with the request is relayed at once, without waiting for more input.
                let early = try await client.receiveBytes(count: 10, timeout: .seconds(2))
                #expect(String(buffer: early) == "early bird")
                #expect(try await client.close().code == 1000)
            }
        }

        @Test("frame headers split across TCP segments are reassembled")
        func headersSplitAcrossReads() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 99)
                var offset = 0
                // 7-bit, 16-bit and 64-bit length forms; each header (and a little payload) a byte per write.
                for size in [100, 300, 70_000] {
                    let frame = WSFrameEncoder.encode(opcode: WSFrame.binary, payload: pattern.buffer(at: offset, count: size), maskKey: [9, 8, 7, 6])
                    let bytes = Array(frame.readableBytesView)
                    for byte in bytes.prefix(20) {
                        try await client.sendRaw([byte])
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    try await client.sendRaw(Array(bytes.dropFirst(20)))
                    let echoed = try await client.receiveBytes(count: size)
                    #expect(pattern.matches(echoed, at: offset), "size \(size)")
                    offset += size
                }
                #expect(try await client.close().code == 1000)
            }
        }

        @Test("200 concurrent sessions each echo their own data")
        func manyConcurrentSessions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let sessions = 200
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<sessions {
                        group.addTask {
                            let client = try await WSTestClient.upgrade(relay)
                            let pattern = BytePattern(seed: 1000 + UInt64(index))
                            let size = 3000 + index * 17
                            try await client.send(binary: pattern.buffer(at: 0, count: size / 2))
                            try await client.send(binary: pattern.buffer(at: size / 2, count: size - size / 2))
                            let echoed = try await client.receiveBytes(count: size, timeout: .seconds(20))
                            let reply = try await client.close(timeout: .seconds(10))
                            await client.shutdown()
                            return pattern.matches(echoed, at: 0) && reply.code == 1000
                        }
                    }
                    var results: [Bool] = []
                    for try await result in group { results.append(result) }
                    return results
                }
                #expect(results.count == sessions)
                #expect(results.allSatisfy { $0 }, "\(results.filter { !$0 }.count) sessions got wrong data back")
                #expect(backend.accepted == sessions)
                #expect(await Relay.eventually { relay.server.environment.registry.count == 0 }, "every session slot is released")
            }
        }

        @Test("a Unix domain socket backend")
        func unixSocketBackend() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-integ-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("echo.sock").path
            let backend = try await TestBackend.start(.echo, unixSocketPath: path)
            defer { Task { await backend.close() } }
            #expect(backend.target == .unix(path: path))
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.upgrade(relay)
                let pattern = BytePattern(seed: 5)
                try await client.send(binary: pattern.buffer(at: 0, count: 200_000))
                let echoed = try await client.receiveBytes(count: 200_000)
                #expect(pattern.matches(echoed, at: 0))
                #expect(try await client.close().code == 1000)
            }
        }

        @Test("an IPv6 loopback listener and backend")
        func ipv6Loopback() async throws {
            do {
                let probe = try await ServerBootstrap(group: IntegrationLoops.group).bind(host: "::1", port: 0).get()
                try await probe.close()
            } catch {
                try Test.cancel("no IPv6 loopback on this machine: \(error)")
            }
            let backend = try await TestBackend.start(.echo, host: "::1")
            defer { Task { await backend.close() } }
            try await Relay.with(
                routes: [Route(path: "/", target: backend.target)],
                listeners: [ListenAddress(host: "::1", port: 0)]
            ) { relay in
                guard case .v6 = relay.address else {
                    Issue.record("listener bound to \(relay.address), not IPv6")
                    return
                }
                let client = try await WSTestClient.upgrade(relay)
                try await client.send(text: "over IPv6")
                let echoed = try await client.receiveBytes(count: 9)
                #expect(String(buffer: echoed) == "over IPv6")
                #expect(try await client.close().code == 1000)
            }
        }

        @Test("the 101 names the binary subprotocol only when it was offered")
        func subprotocolNegotiation() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let offered = try await WSTestClient.upgrade(relay, protocols: ["binary"])
                #expect(offered.response.values("Sec-WebSocket-Protocol") == ["binary"])
                await offered.shutdown()

                let amongOthers = try await WSTestClient.upgrade(relay, protocols: ["chat", "binary"])
                #expect(amongOthers.response.values("Sec-WebSocket-Protocol") == ["binary"])
                await amongOthers.shutdown()

                let none = try await WSTestClient.upgrade(relay)
                #expect(none.response.values("Sec-WebSocket-Protocol").isEmpty)
                #expect(none.response.value("Upgrade")?.lowercased() == "websocket")
                #expect(none.response.value("Connection")?.lowercased() == "upgrade")
                await none.shutdown()

                let unsupported = try await WSTestClient.connect(to: relay, protocols: ["chat"])
                #expect(unsupported.response.status == 400)
                await unsupported.shutdown()
            }
        }

        @Test("Sec-WebSocket-Accept is computed from the key (RFC 6455 example)")
        func acceptValue() async throws {
            let key = "dGhlIHNhbXBsZSBub25jZQ=="
            #expect(WebSocketAccept.value(forKey: key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            try await Relay.with(routes: [Route(path: "/", target: backend.target)]) { relay in
                let client = try await WSTestClient.connect(to: relay, headers: [("Sec-WebSocket-Key", key)])
                #expect(client.response.status == 101)
                #expect(client.response.value("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                await client.shutdown()
            }
        }

        @Test("backend TCP connections are opened with TCP_NODELAY and SO_KEEPALIVE")
        func backendSocketOptions() async throws {
            let backend = try await TestBackend.start(.echo)
            defer { Task { await backend.close() } }
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let channel = try await BackendConnector(limits: Limits()).connect(to: backend.target, on: loop).get()
            // Nagle would hold a second small message until the first is acknowledged.
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
            #expect(try await channel.getOption(.socketOption(.so_keepalive)).get() != 0)
            try await channel.close()
        }
    }
}
