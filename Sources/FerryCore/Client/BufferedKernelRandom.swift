#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Random numbers from the kernel's CSPRNG, fetched 4 KiB at a time: the masking keys' source.
///
/// Every client frame needs a fresh, unpredictable masking key (RFC 6455 §10.3: a key a page's
/// script could predict lets it forge bytes that a proxy on the path might take for a request).
/// `SystemRandomNumberGenerator` makes one getrandom(2) call per key: for a keystroke, a system call
/// next to the frame's own write. This reads the same kernel generator (/dev/urandom) 512 values at
/// a time instead: three system calls per 512 frames.
/// Each value is handed out once, the buffer stays in this process (`ferry connect` does not fork),
/// and if the kernel ever returns less than asked, the rest comes from `SystemRandomNumberGenerator`.
struct BufferedKernelRandom: RandomNumberGenerator {
    private static let count = 512
    private var values = [UInt64](repeating: 0, count: Self.count)
    private var index = Self.count

    init() {}

    mutating func next() -> UInt64 {
        if self.index == Self.count { self.refill() }
        defer { self.index += 1 }
        return self.values[self.index]
    }

    private mutating func refill() {
        let filled = self.values.withUnsafeMutableBytes { bytes -> Bool in
            guard let base = bytes.baseAddress else { return false }
            #if canImport(Darwin)
            arc4random_buf(base, bytes.count)
            return true
            #else
            // getrandom(2) is not in Swift's Glibc module; /dev/urandom is the same generator.
            let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return false }
            defer { close(descriptor) }
            var done = 0
            while done < bytes.count {
                let got = read(descriptor, base + done, bytes.count - done)
                if got > 0 {
                    done += got
                } else if got < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
            #endif
        }
        if !filled {
            var system = SystemRandomNumberGenerator()
            for position in self.values.indices { self.values[position] = system.next() }
        }
        self.index = 0
    }
}
