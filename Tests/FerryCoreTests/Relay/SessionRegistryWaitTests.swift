import NIOConcurrencyHelpers
import Testing

@testable import FerryCore

/// `waitUntilEmpty()`: what the drain waits on instead of polling the count.
@Suite("SessionRegistry.waitUntilEmpty")
struct SessionRegistryWaitTests {
    @Test("returns at once when no slot is open")
    func emptyAtOnce() async {
        let registry = SessionRegistry(maxConnections: 4)
        await registry.waitUntilEmpty()
    }

    @Test("returns when the last of several slots is released, not before")
    func lastRelease() async throws {
        let registry = SessionRegistry(maxConnections: 4)
        let first = try registry.reserve(address: "a").get()
        let second = try registry.reserve(address: "b").get()
        let returned = NIOLockedValueBox(false)
        let waiter = Task {
            await registry.waitUntilEmpty()
            returned.withLockedValue { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(50))
        registry.release(first)
        try await Task.sleep(for: .milliseconds(50))
        #expect(!returned.withLockedValue { $0 }, "returned with a slot still open")
        registry.release(second)
        await waiter.value
        #expect(returned.withLockedValue { $0 })
    }

    @Test("cancellation ends the wait, before or after it suspends; the registry keeps working")
    func cancellation() async throws {
        let registry = SessionRegistry(maxConnections: 4)
        let slot = try registry.reserve(address: "a").get()
        let early = Task { await registry.waitUntilEmpty() }
        early.cancel()
        await early.value
        let late = Task { await registry.waitUntilEmpty() }
        try await Task.sleep(for: .milliseconds(50))
        late.cancel()
        await late.value
        // A later waiter is still woken by the release.
        let after = Task { await registry.waitUntilEmpty() }
        try await Task.sleep(for: .milliseconds(20))
        registry.release(slot)
        await after.value
    }
}
