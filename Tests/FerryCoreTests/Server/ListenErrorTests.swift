import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

/// A port that is taken, or an address the machine does not have, is the first error many users
/// meet: every listener (relay, admin, the demo's chat service) names its flag and says what to do.
@Suite("Listener errors are readable")
struct ListenErrorTests {
    /// A port some other socket holds for the length of `body`.
    static func withBusyPort<T>(_ body: (Int) async throws -> T) async throws -> T {
        let busy = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { busy.close(promise: nil) }
        return try await body(busy.localAddress!.port!)
    }

    static func startError(_ configuration: FerryConfiguration) async throws -> String? {
        let server = try FerryServer(configuration: configuration, logger: Relay.logger)
        do {
            try await server.start()
            await server.stop(timeout: .seconds(1))
            return nil
        } catch let error as ConfigurationError {
            return error.description
        }
    }

    @Test("--listen on a port in use: address already in use, and what to do")
    func relayPortInUse() async throws {
        try await Self.withBusyPort { port in
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: port)],
                routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))]
            )
            let error = try await Self.startError(configuration)
            #expect(error == "--listen 127.0.0.1:\(port): address already in use (another process listens there; pick another port)")
        }
    }

    @Test("--listen on an address the machine does not have: says so, no errno in sight")
    func relayAddressNotAvailable() async throws {
        // TEST-NET-1 (RFC 5737): never one of this machine's addresses.
        let configuration = try FerryConfiguration(
            listeners: [ListenAddress(host: "192.0.2.1", port: 6080)],
            routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))]
        )
        let error = try await Self.startError(configuration)
        #expect(error?.hasPrefix("--listen 192.0.2.1:6080: address not available (it is not one of this machine's;") == true, "\(error ?? "no error")")
        #expect(error?.contains("errno") == false)
    }

    @Test("--admin-listen on a port in use: the same readable line")
    func adminPortInUse() async throws {
        try await Self.withBusyPort { port in
            let configuration = try FerryConfiguration(
                listeners: [ListenAddress(host: "127.0.0.1", port: 0)],
                routes: [Route(path: "/", target: .tcp(host: "127.0.0.1", port: 9))],
                adminListen: ListenAddress(host: "127.0.0.1", port: port)
            )
            let error = try await Self.startError(configuration)
            #expect(error == "--admin-listen 127.0.0.1:\(port): address already in use (another process listens there; pick another port)")
        }
    }

    @Test("ferry demo with its chat port in use: names --chat, exits 2")
    func demoChatPortInUse() async throws {
        guard let ferry = FerryExecutable.path else {
            Issue.record("the ferry executable was not built (swift build builds it)")
            return
        }
        try await Self.withBusyPort { port in
            let log = NSTemporaryDirectory() + "ferry-demo-busy-\(getpid()).log"
            defer { try? FileManager.default.removeItem(atPath: log) }
            let listen = try await FreePort.on()
            let demo = try ChildProcess(executable: ferry, arguments: ["demo", "--listen", "127.0.0.1:\(listen)", "--chat", "127.0.0.1:\(port)"], logPath: log)
            let status = await demo.waitForExit(timeout: .seconds(10))
            await demo.stop(signal: SIGINT)
            #expect(status == 2)
            #expect(demo.output.contains("ferry: --chat 127.0.0.1:\(port): address already in use (another process listens there; pick another port)"), "\(demo.output)")
            #expect(!demo.output.contains("errno"), "\(demo.output)")
        }
    }
}
