import NIOCore

/// Holds back one side's `read()` while the other side cannot take more (backpressure), and lets
/// the held read go once it can. Both halves of a splice use one each.
///
/// It only decides; the caller issues `context.read()` after the decision. An HTTP/2 stream channel
/// with auto-read calls the pipeline's `read()` again from inside a `read()`, which would overlap
/// with a mutation still under way here.
struct ReadGate {
    private(set) var pending = false

    /// Whether a `read()` goes on now; if not, it is remembered.
    mutating func admit(allowed: Bool) -> Bool {
        if !allowed { self.pending = true }
        return allowed
    }

    /// Whether the held read, if there is one, goes now (a side can wait on more than one condition:
    /// the client's reads wait on the backend and on the client's own channel).
    mutating func release(allowed: Bool) -> Bool {
        guard self.pending, allowed else { return false }
        self.pending = false
        return true
    }
}
