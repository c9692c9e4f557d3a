import Foundation
import NIOCore

// How long a measurement took, how much CPU the relay spent on it, and on what machine: the plain
// functions every scenario uses, outside `BenchRunner` because they need none of its state.

/// Seconds `body` took.
func timed(_ body: () async throws -> Void) async throws -> Double {
    let start = NIODeadline.now()
    try await body()
    return Double((NIODeadline.now() - start).nanoseconds) / 1e9
}

/// Runs a transfer of `bytes`: its seconds, and the relay's CPU milliseconds per GiB over it (nil
/// without a relay process). CPU per GiB is steadier than MB/s on a shared machine: it does not
/// depend on how much CPU the client and the backends got meanwhile. It is read before the caller
/// closes the connection, while a forking relay's child still lives.
func timedTransfer(bytes: Int, relay: RunningRelay?, _ body: () async throws -> Void) async throws -> (seconds: Double, cpuPerGiB: Double?) {
    let before = relay?.cpuNanoseconds()
    let seconds = try await timed(body)
    guard let before, let after = relay?.cpuNanoseconds() else { return (seconds, nil) }
    return (seconds, Double(after &- before) / 1e6 / (Double(bytes) / Double(1 << 30)))
}

/// The report's machine line: cores, CPU model, memory.
func machineDescription() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory >> 30) GiB"
}
