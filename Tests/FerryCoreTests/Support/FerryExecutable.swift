// The `ferry` executable built with the tests, run as a child process, and the repository it was
// built from (scripts, deploy files and docs the tests read).

import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The repository's folders, found from this file's place in it.
enum Repository {
    /// The repository root (the folder that holds Package.swift).
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/`, where the Python clients and browser scripts the tests run live.
    static let tests = Self.root.appendingPathComponent("Tests")
}

/// The `ferry` executable from the same build as this test bundle, if it was built.
enum FerryExecutable {
    static let path: String? = {
        var folders: [URL] = []
        if let executable = Bundle.main.executableURL { folders.append(executable.deletingLastPathComponent()) }
        // macOS: the tests are a bundle (…/debug/ferryPackageTests.xctest) loaded by a runner elsewhere.
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            folders.append(bundle.bundleURL.deletingLastPathComponent())
        }
        if let first = CommandLine.arguments.first {
            folders.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        return folders.map { $0.appendingPathComponent("ferry").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

/// The `ferry` executable run as a child process on a free port.
enum FerryBinary {
    /// Starts `ferry --listen 127.0.0.1:PORT` plus `arguments` (a free port picked here) with its
    /// output in a log file in `directory`; returns the process and the port. Does not wait.
    static func spawn(_ executable: String, arguments: [String], directory: String) async throws -> (ChildProcess, Int) {
        let port = try await FreePort.on()
        let process = try ChildProcess(
            executable: executable,
            arguments: ["--listen", "127.0.0.1:\(port)"] + arguments,
            logPath: "\(directory)/ferry.log"
        )
        return (process, port)
    }

    /// Runs `ferry arguments` to its end (it must end by itself within 10 s); status and output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let executable = try #require(FerryExecutable.path)
        let directory = try TLSFiles.makeDirectory("startup")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = try ChildProcess(executable: executable, arguments: arguments, logPath: directory + "/out.log")
        let status = await process.waitForExit(timeout: .seconds(10))
        if status == nil { await process.stop(signal: SIGKILL) }
        return (try #require(status, "ferry \(arguments) did not exit"), process.output)
    }

    /// Runs `body` with the `ferry` binary relaying `/` to an echo backend on a free port (started,
    /// not yet waited for), its files in a fresh folder `name`; stops it (SIGINT) whatever happens.
    static func withEchoRelay<T>(_ name: String, _ body: (ChildProcess, Int) async throws -> T) async throws -> T {
        let executable = try #require(FerryExecutable.path)
        let directory = try TLSFiles.makeDirectory(name)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backend = try await TestBackend.start(.echo)
        defer { Task { await backend.close() } }
        let (ferry, port) = try await Self.spawn(executable, arguments: ["--route", "/=127.0.0.1:\(backend.address.port!)"], directory: directory)
        do {
            let result = try await body(ferry, port)
            await ferry.stop(signal: SIGINT, grace: .seconds(3))
            return result
        } catch {
            await ferry.stop(signal: SIGINT, grace: .seconds(3))
            throw error
        }
    }

    /// Waits (bounded) for the `listening address=127.0.0.1:PORT` line.
    static func waitForListening(_ process: ChildProcess, port: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await process.waitForOutput(timeout: timeout) { Self.listeningPort(in: $0) } == port
    }

    /// The port in `listening address=127.0.0.1:PORT`.
    static func listeningPort(in log: String) -> Int? {
        guard let range = log.range(of: "listening address=127.0.0.1:") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }

    /// How a child process ended, for failure messages.
    static func exitDescription(_ process: ChildProcess) -> String {
        if process.isRunning { return "still running" }
        switch process.process.terminationReason {
        case .uncaughtSignal: return "killed by signal \(process.process.terminationStatus)"
        default: return "exited with status \(process.process.terminationStatus)"
        }
    }

    /// Opens a WebSocket session on a relay that is not in this process (no `RunningRelay`).
    static func upgrade(_ address: SocketAddress, path: String = "/", autoPong: Bool = true, receiveBufferSize: Int? = nil) async throws -> WSTestClient {
        let client = try await WSTestClient.open(to: address, autoPong: autoPong, receiveBufferSize: receiveBufferSize)
        do {
            try await client.sendHandshake(path: path, host: "127.0.0.1:\(address.port ?? 0)")
            _ = try await client.readResponse(timeout: .seconds(5))
            try client.checkUpgraded()
            return client
        } catch {
            await client.shutdown()
            throw error
        }
    }
}
