// Plumbing for the tests that run the built `ferry` executable the way websockify's users do: through a
// `websockify` symbolic link, with websockify's own argument lists, on 127.0.0.1 ports that were free a
// moment before. Every process is stopped whatever the test does, and every wait has a deadline.

import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The parent of every suite that starts processes: `swift test --filter Websockify` selects them
/// (with the unit tests), and they run one at a time, since several of them measure seconds.
@Suite("Websockify (ferry run as websockify)", .serialized)
struct WebsockifyProcessTests {
    /// Tests that need the executable are enabled only when it was built next to the test bundle.
    static var ferryBuilt: Bool { FerryExecutable.path != nil }
}

/// A folder for one test, holding a `websockify` link to the `ferry` executable and the test's files;
/// removed by ``remove()``.
struct WebsockifyFolder {
    let path: String
    /// `PATH/bin/websockify`, a symbolic link to the built `ferry`.
    let websockify: String

    init(_ label: String) throws {
        let ferry = try #require(FerryExecutable.path, "the ferry executable is not built next to the tests (swift build)")
        self.path = try TLSFiles.makeDirectory("websockify-\(label)")
        try FileManager.default.createDirectory(atPath: self.path + "/bin", withIntermediateDirectories: true)
        self.websockify = self.path + "/bin/websockify"
        try FileManager.default.createSymbolicLink(atPath: self.websockify, withDestinationPath: ferry)
    }

    func file(_ name: String) -> String { self.path + "/" + name }

    /// Writes `text` to `name` in the folder; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let path = self.file(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func makeDirectory(_ name: String) throws -> String {
        let path = self.file(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Removes the folder. Test backends on Unix sockets in it may still be closing (their channels
    /// are closed from a task), and a file that disappears under the walk fails it: try again.
    func remove() {
        for _ in 0..<5 where FileManager.default.fileExists(atPath: self.path) {
            if (try? FileManager.default.removeItem(atPath: self.path)) != nil { return }
            usleep(20_000)
        }
    }
}

/// Where a process could not be started or did not come up.
struct WebsockifyStartFailure: Error, CustomStringConvertible {
    var arguments: [String]
    var reason: String
    var output: String
    var description: String { "websockify \(self.arguments.joined(separator: " ")): \(self.reason)\n--- output ---\n\(self.output)" }
}

extension ChildProcess {
    /// The Ferry command line the websockify translation logged.
    var runningAs: String? {
        self.output.split(separator: "\n").first { $0.contains("running as: ferry ") }.map { String($0.split(separator: "running as: ", maxSplits: 1)[1]) }
    }
}

extension WebsockifyFolder {
    /// Starts `websockify arguments` (through the link) in this folder (or `directory`), waits until
    /// its log says it listens on `listening` (`HOST:PORT` as Ferry logs it; nil: do not wait), runs
    /// `body`, and stops the process whatever happens.
    func run<T>(
        _ arguments: [String],
        listening: String?,
        directory: String? = nil,
        executable: String? = nil,
        log: String = "websockify.log",
        _ body: (ChildProcess) async throws -> T
    ) async throws -> T {
        let process = try ChildProcess(executable: executable ?? self.websockify, arguments: arguments, directory: directory ?? self.path, logPath: self.file(log))
        do {
            if let listening {
                guard await process.waitForOutput("listening address=\(listening)") else {
                    throw WebsockifyStartFailure(arguments: arguments, reason: process.isRunning ? "no 'listening address=\(listening)' within 15 s" : "exited with status \(process.process.terminationStatus) before listening", output: process.output)
                }
            }
            let result = try await body(process)
            await process.stop(signal: SIGINT, grace: .seconds(3))
            return result
        } catch {
            await process.stop(signal: SIGINT, grace: .seconds(3))
            throw error
        }
    }

    /// Runs `websockify arguments` to its end (it is expected to refuse to start): exit status and output.
    func runToExit(_ arguments: [String], timeout: Duration = .seconds(15)) async throws -> (status: Int32?, output: String) {
        let process = try ChildProcess(executable: self.websockify, arguments: arguments, directory: self.path, logPath: self.file("exit-\(UUID().uuidString.prefix(6)).log"))
        let status = await process.waitForExit(timeout: timeout)
        await process.stop(signal: SIGINT, grace: .seconds(3))
        return (status, process.output)
    }
}

extension TestBackend {
    var port: Int { self.address.port ?? 0 }
    /// `127.0.0.1:PORT`, as a websockify target.
    var hostPort: String { "127.0.0.1:\(self.port)" }
}

// MARK: - Clients

/// A WebSocket or HTTP client for a relay in another process, on the integration tests' client.
enum DropInClient {
    /// Opens a connection, sends an upgrade request for `path` and reads the answer, whatever it is.
    static func attempt(
        _ address: SocketAddress,
        path: String = "/websockify",
        host: String? = nil,
        headers: [(String, String)] = [],
        removing: Set<String> = [],
        protocols: [String]? = nil
    ) async throws -> WSTestClient {
        let client = try await WSTestClient.open(to: address)
        do {
            try await client.sendHandshake(path: path, host: host ?? PlainHTTP.hostHeader(address), headers: headers, removing: removing, protocols: protocols)
            _ = try await client.readResponse(timeout: .seconds(10))
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// The HTTP status of an upgrade request (the connection is closed).
    static func status(_ address: SocketAddress, path: String = "/websockify", host: String? = nil, headers: [(String, String)] = []) async throws -> Int {
        let client = try await Self.attempt(address, path: path, host: host, headers: headers)
        await client.shutdown()
        return client.response.status
    }

    /// Like ``attempt(_:path:host:headers:removing:protocols:)`` but insists on a 101 with the right accept value.
    static func upgrade(
        _ address: SocketAddress,
        path: String = "/websockify",
        host: String? = nil,
        headers: [(String, String)] = [],
        protocols: [String]? = nil
    ) async throws -> WSTestClient {
        let client = try await Self.attempt(address, path: path, host: host, headers: headers, protocols: protocols)
        do {
            try client.checkUpgraded()
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }



    static func local(_ port: Int) throws -> SocketAddress {
        try SocketAddress(ipAddress: "127.0.0.1", port: port)
    }

    /// Over TLS: connects, handshakes, asks for the upgrade and reads the answer, whatever it is.
    static func attemptTLS(
        _ address: SocketAddress,
        configuration: TLSConfiguration,
        path: String = "/websockify",
        headers: [(String, String)] = []
    ) async throws -> (TLSUpgradeAttempt, TLSClientSession?) {
        try await TLSClient.attemptUpgrade(address, configuration: configuration, path: path, headers: headers, responseTimeout: .seconds(10))
    }

    /// Over TLS, insisting on a 101.
    static func upgradeTLS(_ address: SocketAddress, configuration: TLSConfiguration, path: String = "/websockify") async throws -> TLSClientSession {
        let (attempt, session) = try await Self.attemptTLS(address, configuration: configuration, path: path)
        guard let session, attempt.status == 101 else {
            await session?.shutdown()
            throw TLSUpgradeRefused(attempt: attempt)
        }
        try session.client.checkUpgraded()
        return session
    }
}

enum DropInEcho {
    /// Every byte value, then a text message, echoed back intact; then a clean close.
    static func check(_ client: WSTestClient, closing: Bool = true) async throws {
        let all = (0...255).map { UInt8($0) }
        try await client.send(binary: all)
        let echoed = try await client.receiveBytes(count: 256, timeout: .seconds(10))
        #expect(Array(echoed.readableBytesView) == all)
        #expect(try await TLSEcho.roundTrip(client, "héllo ✓") == "héllo ✓")
        try await client.send(text: "text message")
        let text = try await client.receiveBytes(count: 12, timeout: .seconds(10))
        #expect(text.getString(at: text.readerIndex, length: text.readableBytes) == "text message")
        if closing {
            #expect(try await client.close(code: 1000).code == 1000)
            await client.shutdown()
        }
    }
}
