import FerryCore
import NIOCore
import NIOWebSocket

/// The unmask micro-benchmark: no relay and no network, only the loop every uploaded byte goes through
/// in Ferry, timed against NIO's own.
extension BenchRunner {
    /// Unmasking speed on one core: Ferry's word-wise loop against NIO's byte loop, same buffer.
    func unmask() -> [Measurement] {
        let size = self.options.unmaskBytes
        let passes = self.options.unmaskPasses
        let key: WebSocketMaskingKey = [0x12, 0x34, 0x56, 0x78]
        let source = ByteBuffer(repeating: 0xA5, count: size)
        var target = ByteBuffer()
        target.reserveCapacity(size)
        var start = NIODeadline.now()
        for pass in 0..<passes {
            target.clear()
            target.writeMasked(source, key: key, phase: pass & 3)
        }
        let ferrySeconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        var nio = source
        start = .now()
        for pass in 0..<max(1, passes / 8) { nio.webSocketUnmask(key, indexOffset: pass & 3) }
        let nioSeconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        let ferryRate = Double(size * passes) / ferrySeconds / 1e9
        let nioRate = Double(size * max(1, passes / 8)) / nioSeconds / 1e9
        self.progress("  unmask: Ferry \(String(format: "%.1f", ferryRate)) GB/s, NIO byte loop \(String(format: "%.2f", nioRate)) GB/s")
        let name = self.options.relays.first?.name ?? "ferry"
        return [
            Measurement(scenario: "unmask", metric: "word-wise unmask, 1 core", unit: "GB/s", path: name, value: ferryRate, higherIsBetter: true),
            Measurement(scenario: "unmask", metric: "NIO byte-loop unmask, 1 core", unit: "GB/s", path: name, value: nioRate, higherIsBetter: true),
        ]
    }
}
