// Plumbing for the suites that run `ferry connect` against servers other than Ferry's relay
// (websockify, websocat, sshd): each one a child process on a port that was free a moment before,
// waited for by connecting to that port (or by its own "listening" line), and stopped whatever the
// test does. Every wait has a deadline.

import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An outside server did not come up.
struct InteropStartFailure: Error, CustomStringConvertible {
    var command: [String]
    var reason: String
    var output: String
    var description: String { "\(self.command.joined(separator: " ")): \(self.reason)\n--- output ---\n\(self.output)" }
}

enum InteropServer {
    /// How to tell that the server is ready.
    enum Readiness {
        /// A TCP connection to 127.0.0.1:port succeeds.
        case accepts(port: Int)
        /// Its output contains this text.
        case says(String)
    }

    /// Starts `executable arguments` with its output in `folder/log`, waits (up to 15 s) until it is
    /// ready, runs `body`, and stops it (SIGTERM, then SIGKILL) whatever happens.
    static func with<T>(
        _ executable: String,
        _ arguments: [String],
        folder: String,
        log: String,
        ready: Readiness,
        _ body: (ChildProcess) async throws -> T
    ) async throws -> T {
        let process = try ChildProcess(executable: executable, arguments: arguments, directory: folder, logPath: "\(folder)/\(log)")
        do {
            let isReady: Bool
            switch ready {
            case .accepts(let port): isReady = await Self.waitUntilAccepting(port: port, while: process)
            case .says(let text): isReady = await process.waitForOutput(text)
            }
            guard isReady else {
                let reason = process.isRunning ? "not ready within 15 s" : "exited with status \(process.process.terminationStatus) before it was ready"
                throw InteropStartFailure(command: [executable] + arguments, reason: reason, output: process.output)
            }
            let result = try await body(process)
            await process.stop(grace: .seconds(3))
            return result
        } catch {
            await process.stop(grace: .seconds(3))
            throw error
        }
    }

    /// Connects to 127.0.0.1:`port` every 50 ms until a connection is accepted (true), `process`
    /// exits or `timeout` passes (false).
    static func waitUntilAccepting(port: Int, while process: ChildProcess, timeout: Duration = .seconds(15)) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let bootstrap = ClientBootstrap(group: IntegrationLoops.group).connectTimeout(.seconds(1))
        while clock.now < deadline && process.isRunning {
            if let channel = try? await bootstrap.connect(host: "127.0.0.1", port: port).get() {
                try? await channel.close()
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// A fresh folder for one test, removed after `body`.
    static func inFolder<T>(_ label: String, _ body: (String) async throws -> T) async throws -> T {
        let folder = try TLSFiles.makeDirectory(label)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try await body(folder)
    }
}

// MARK: - Sessions through ferry connect

enum InteropSession {
    /// Sends `bytes` through `ferry connect --listen` (in this process, configured by
    /// `configuration`), half-closes, and returns what came back before the session ended (nil if
    /// the echo did not all arrive).
    static func echoThroughListener(_ configuration: ConnectConfiguration, _ bytes: [UInt8], timeout: Duration = .seconds(30)) async throws -> [UInt8]? {
        try await ClientRun.listening(configuration) { _, addresses in
            let client = try await LocalTestClient.connect(to: addresses[0])
            defer { Task { await client.close() } }
            if !bytes.isEmpty {
                try await client.send(ByteBuffer(bytes: bytes))
                guard let echoed = try? await client.receive(count: bytes.count, timeout: timeout), echoed.readableBytes >= bytes.count else { return nil }
            }
            // WebSocket has no half-close: the local EOF ends the session, and the local connection with it.
            try await client.finishSending()
            guard await client.waitForEnd() else { return nil }
            return Array(client.received.readableBytesView)
        }
    }

    /// Pipes `bytes` through `ferry connect ARGUMENTS` (the executable, stdio mode), waits for them to
    /// come back, closes standard input; what came back, the exit status and standard error.
    static func echoThroughStdio(_ arguments: [String], _ bytes: [UInt8], timeout: Duration = .seconds(30)) async throws -> (echoed: [UInt8], status: Int32?, errors: String) {
        let connect = try StdioConnect(arguments)
        if !bytes.isEmpty {
            try await connect.send(bytes)
            _ = try? await connect.receive(count: bytes.count, timeout: timeout)
        }
        try connect.closeInput()
        let status = await connect.waitForExit(timeout: .seconds(15))
        return (connect.receivedBytes, status, connect.errorOutput)
    }

    /// `count` bytes of a pattern seeded by `seed` (every byte value occurs: not valid UTF-8, so a
    /// relay that turned them into text frames would be caught).
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        count == 0 ? [] : BytePattern(seed: seed).bytes(at: 0, count: count)
    }
}
