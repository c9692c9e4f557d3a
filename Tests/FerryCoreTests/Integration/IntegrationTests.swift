import Testing

/// The parent of every integration suite: `swift test --filter Integration` selects them all, and
/// they run one at a time (several measure timing, and two CPU cores are easily saturated).
@Suite("Integration (real sockets)", .serialized)
struct IntegrationTests {}
