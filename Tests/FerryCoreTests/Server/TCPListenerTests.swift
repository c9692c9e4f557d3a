import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#endif

/// One listening socket per event loop on the same port (Linux), so no connection is handed across
/// threads; and a port another process holds is still refused, even one held with SO_REUSEPORT.
@Suite("TCP listeners: one socket per event loop")
struct TCPListenerTests {
    /// Two loops whatever the machine's core count (kept for the whole test process).
    static let twoLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    #if os(Linux)
    @Test("with two event loops a listen address gets two listening sockets on one port, and sessions work on both")
    func oneSocketPerLoop() async throws {
        let group = Self.twoLoops
        let backend = try await TestBackend.start(.echo)
        defer { Task { await backend.close() } }
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
            routes: [Route(path: "/", target: backend.target)],
            limits: Relay.testLimits()
        )
        let server = try FerryServer(configuration: configuration, group: group, logger: Relay.logger)
        let addresses = try await server.start()
        let channels = server.listeners.withLockedValue { $0.flatMap(\.channels) }
        #expect(channels.count == 2)
        #expect(Set(channels.compactMap(\.localAddress?.port)).count == 1, "both sockets share the port")
        #expect(Set(channels.map { ObjectIdentifier($0.eventLoop) }).count == 2, "each socket accepts on its own loop")
        #expect(addresses.count == 1, "one bound address per listen address")

        // Connections from many source ports land on both sockets; every one of them works.
        let relay = RunningRelay(server: server, addresses: addresses)
        for index in 0..<8 {
            let client = try await WSTestClient.upgrade(relay)
            try await client.send(text: "hello \(index)")
            #expect(String(buffer: try await client.receiveBytes(count: "hello \(index)".utf8.count)) == "hello \(index)")
            #expect(try await client.close().code == 1000)
        }
        await server.stop(timeout: .seconds(2))
        #expect(channels.allSatisfy { !$0.isActive }, "stopping closes every socket")
    }

    @Test("a port held by another socket with SO_REUSEPORT is still 'address already in use'")
    func reusePortHolderIsRefused() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let port = holder.localAddress!.port!
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "127.0.0.1", port: port)],
            routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))]
        )
        let group = Self.twoLoops
        let server = try FerryServer(configuration: configuration, group: group, logger: Relay.logger)
        do {
            try await server.start()
            await server.stop(timeout: .seconds(1))
            Issue.record("Ferry joined a port another socket holds with SO_REUSEPORT")
        } catch let error as ConfigurationError {
            #expect(error.description == "--listen 127.0.0.1:\(port): address already in use (another process listens there; pick another port)")
        }
    }
    #endif
}
