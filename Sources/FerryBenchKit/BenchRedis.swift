import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `redis-server` for the auth scenario's `--token-redis` row: a loopback port, no persistence,
/// stopped with the run. Its one key is written with a raw RESP `SET` over a blocking socket (the
/// benchmark needs no Redis client beyond that line).
final class BenchRedis: @unchecked Sendable {
    let port: Int
    private let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    /// Starts `program` and waits (at most 10 s) until it answers.
    static func start(program: String, port: Int) async throws -> BenchRedis {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", NSTemporaryDirectory()]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let redis = BenchRedis(port: port, process: process)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? redis.command(["PING"])) == "+PONG" { return redis }
            try await Task.sleep(for: .milliseconds(50))
        }
        redis.stop()
        throw BenchError.relayDidNotStart("redis-server on port \(port) did not answer PING within 10 s")
    }

    /// Sends one command and returns the reply's first line (`+OK`, `+PONG`).
    @discardableResult
    func command(_ words: [String]) throws -> String {
        let socket = try BlockingSocket(port: self.port, timeoutSeconds: 2)
        defer { socket.close() }
        var text = "*\(words.count)\r\n"
        for word in words { text += "$\(word.utf8.count)\r\n\(word)\r\n" }
        try Array(text.utf8).withUnsafeBytes { try socket.writeAll($0) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 1)
        defer { buffer.deallocate() }
        let count = try socket.read(into: buffer)
        return String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
    }

    func stop() {
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
    }
}
