import Testing

// Parent suites that run their children one at a time: several children measure timing, and two CPU
// cores are easily saturated. `swift test --filter NAME` selects a parent's children together.

/// The relay's data path, handshakes, lifecycle and protocol errors over real sockets
/// (`--filter Integration`).
@Suite("Integration (real sockets)", .serialized)
struct IntegrationTests {}

/// Operating the server: start-up, listeners, drain and lifetime, PROXY and forwarding headers
/// behind load balancers, health and metrics (`--filter Operations`).
@Suite("Operations (server, load balancers, observability)", .serialized)
struct OperationsTests {}
