import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads on SIGHUP and polls for file changes, until the service group shuts down. It runs even
/// with nothing to reload, so that SIGHUP (`systemctl reload`) never falls back to its default action,
/// which ends the process.
public struct ReloadService: Service {
    public let reloadables: [any Reloadable]
    public let interval: Duration
    public let listenForSIGHUP: Bool
    private let logger: Logger

    public init(
        reloadables: [any Reloadable],
        interval: Duration = .seconds(2),
        listenForSIGHUP: Bool = true,
        logger: Logger = Logger(label: "ferry")
    ) {
        self.reloadables = reloadables
        self.interval = interval
        self.listenForSIGHUP = listenForSIGHUP
        self.logger = logger
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if self.listenForSIGHUP {
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        if self.reloadables.isEmpty {
                            self.logger.notice("SIGHUP: reloaded (nothing to reload)")
                            continue
                        }
                        let reloaded = self.reloadables.reduce(0) { count, reloadable in count + (reloadable.reload() ? 1 : 0) }
                        self.logger.notice("SIGHUP: reloaded", metadata: ["reloaded": "\(reloaded)", "failed": "\(self.reloadables.count - reloaded)"])
                    }
                }
            }
            guard !self.reloadables.isEmpty else {
                try? await gracefulShutdown()
                group.cancelAll()
                return
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
