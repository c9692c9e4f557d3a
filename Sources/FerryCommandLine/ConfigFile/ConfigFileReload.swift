import ArgumentParser
import FerryCore
import Logging
import NIOConcurrencyHelpers

/// Reads the `--config` file again on SIGHUP and when it changes (polled with the token files: a
/// new size, time or inode, which is also how a Kubernetes ConfigMap update shows, as a symlink
/// swap), under the same environment and flags, and hands the result to the running server
/// (``FerryServer/reload(to:)``). Every reload is logged with a one-line summary of what changed; a
/// file that does not read or does not configure is logged with its position, counted, and the last
/// good configuration stays.
public final class ConfigFileReload: Reloadable {
    private struct State {
        var layers: ConfigLayers
        var stamp: FileStamp
    }

    private let state: NIOLockedValueBox<State>
    private let server: FerryServer
    private let logger: Logger
    public let path: String

    /// Nil when the relay was started without a configuration file.
    public init?(layers: ConfigLayers, server: FerryServer, logger: Logger) {
        guard let path = layers.configPath else { return nil }
        self.path = path
        self.state = NIOLockedValueBox(State(layers: layers, stamp: FileStamp(path)))
        self.server = server
        self.logger = logger
    }

    public func reloadIfChanged() {
        let changed = self.state.withLockedValue { $0.stamp != FileStamp(self.path) }
        if changed { _ = self.reload() }
    }

    @discardableResult
    public func reload() -> Bool {
        let (previous, stamp) = self.state.withLockedValue { ($0.layers, FileStamp(self.path)) }
        // The stamp is taken before the read: a write during the read shows as a change next time.
        self.state.withLockedValue { $0.stamp = stamp }
        let layers: ConfigLayers
        let configuration: FerryConfiguration
        do {
            layers = try previous.reread()
            let options: FerryOptions
            do {
                options = try FerryOptions.parse(layers.arguments)
            } catch {
                return self.failed(FerryOptions.message(for: error))
            }
            do {
                (configuration, _) = try options.configuration()
            } catch {
                return self.failed(layers.placed(error))
            }
        } catch {
            return self.failed(error.description)
        }
        self.state.withLockedValue { $0.layers = layers }
        let change = self.server.reload(to: configuration)
        self.logger.notice("configuration reloaded: \(change.summary)", metadata: ["file": "\(self.path)"])
        return true
    }

    private func failed(_ reason: String) -> Bool {
        self.server.reloadFailed()
        self.logger.error("configuration not reloaded; the last good one stays: \(reason)", metadata: ["file": "\(self.path)"])
        return false
    }
}
