import Dispatch

/// Runs blocking work (waiting for a child process, reading its whole output) on a Dispatch thread
/// instead of the Swift concurrency pool. The pool has one thread per core, two here: a test that
/// blocked one for the 80 s of the browser suite left the other to every async test in the run, and
/// timing tests beside it missed their windows.
enum BlockingWork {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
