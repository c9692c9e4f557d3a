// Child processes with deadlines (the `ferry` binary, Python clients, websockify, openssl…) and the
// throw-away files they are given.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary folders and files replaced the way deployment tools replace them.
enum TLSFiles {
    /// A new empty folder under the system's temporary folder.
    static func makeDirectory(_ label: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(label)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func read(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// Replaces a file the way deployment tools do: write a new file beside it, then rename it over.
    static func replace(_ path: String, with data: Data) throws {
        let temporary = path + ".new"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw POSIXFailure(call: "rename \(temporary)", code: errno) }
    }

    static func copy(_ source: String, to destination: String) throws {
        try self.replace(destination, with: try self.read(source))
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    var call: String
    var code: Int32
    var description: String { "\(self.call): \(String(cString: strerror(self.code)))" }
}

// MARK: - Child processes

/// A child process whose standard output and error go to a file, polled with deadlines.
final class ChildProcess {
    let process = Process()
    let logPath: String

    /// - Parameters:
    ///   - directory: the working folder; nil keeps the test's.
    ///   - environment: variables set (or, with nil values, removed) on top of the test's own.
    init(executable: String, arguments: [String], directory: String? = nil, environment: [String: String?] = [:], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw POSIXFailure(call: "open \(logPath)", code: errno) }
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        if let directory { self.process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (name, value) in environment { merged[name] = value }
            self.process.environment = merged
        }
        self.process.standardOutput = log
        self.process.standardError = log
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
        try? log.close()
    }

    var pid: pid_t { self.process.processIdentifier }
    var isRunning: Bool { self.process.isRunning }

    var output: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit; returns its status, or nil if it is still running at the deadline.
    func waitForExit(timeout: Duration) async -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while self.process.isRunning && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.process.isRunning ? nil : self.process.terminationStatus
    }

    /// Polls the output until `find` returns a value or `timeout` passes.
    func waitForOutput<T>(timeout: Duration, _ find: (String) -> T?) async -> T? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if let found = find(self.output) { return found }
            if !self.process.isRunning { return find(self.output) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return find(self.output)
    }

    /// Polls the output until it contains `text` (true), the process exits or `timeout` passes (false).
    func waitForOutput(_ text: String, timeout: Duration = .seconds(15)) async -> Bool {
        await self.waitForOutput(timeout: timeout) { $0.contains(text) ? true : nil } ?? false
    }

    /// `signal` (SIGTERM: Ferry drains first; SIGINT: it stops at once), then SIGKILL if it has not
    /// exited within `grace`.
    func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(5)) async {
        guard self.process.isRunning else { return }
        kill(self.pid, signal)
        if await self.waitForExit(timeout: grace) == nil {
            kill(self.pid, SIGKILL)
            _ = await self.waitForExit(timeout: .seconds(5))
        }
    }
}
