import NIOWebSocket
import Testing

@testable import FerryCore

extension ClientTests {
    @Suite("Unit: masking keys from the buffered kernel CSPRNG")
    struct BufferedKernelRandomTests {
        @Test("values across several refills are never handed out twice, and keys use every byte")
        func distinctValuesAcrossRefills() {
            var random = BufferedKernelRandom()
            // 512 values per refill: four refills and a part.
            let values = (0..<2100).map { _ in random.next() }
            #expect(Set(values).count == values.count)
            var keys = Set<UInt32>()
            var seenBytes = [Bool](repeating: false, count: 4)
            for _ in 0..<2000 {
                let key = WebSocketMaskingKey.random(using: &random)
                keys.insert(UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3]))
                for position in 0..<4 where key[position] != 0 { seenBytes[position] = true }
            }
            // 2,000 random 32-bit keys collide with probability about 5e-4; more than two would mean
            // a broken source, not bad luck.
            #expect(keys.count >= 1998)
            #expect(seenBytes == [true, true, true, true])
        }
    }
}
