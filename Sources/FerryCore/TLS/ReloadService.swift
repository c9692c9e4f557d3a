import Logging
import ServiceLifecycle
import UnixSignals

/// Something that can be re-read from disk without a restart: certificates now, token files later.
public protocol Reloadable: Sendable {
    /// Re-reads unconditionally (SIGHUP).
    func reload() -> Bool
    /// Re-reads if the files changed since the last read (polling).
    func reloadIfChanged()
}

/// Reloads on SIGHUP and polls for file changes, until the service group shuts down.
public struct ReloadService: Service {
    public let reloadables: [any Reloadable]
    public let interval: Duration
    public let listenForSIGHUP: Bool

    public init(reloadables: [any Reloadable], interval: Duration = .seconds(2), listenForSIGHUP: Bool = true) {
        self.reloadables = reloadables
        self.interval = interval
        self.listenForSIGHUP = listenForSIGHUP
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if self.listenForSIGHUP {
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        for reloadable in self.reloadables { _ = reloadable.reload() }
                    }
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: self.interval)) != nil {
                    for reloadable in self.reloadables { reloadable.reloadIfChanged() }
                }
            }
            // Runs until the service group shuts down; then the loops are cancelled.
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
