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
        /// The logging the relay runs with (its level changes live; format and file do not).
        var logging: LoggingOptions
        /// `--access-log` as started (it does not change live).
        var accessLog: String?
    }

    private let state: NIOLockedValueBox<State>
    /// Held for a whole reload: SIGHUP and the watch run in different tasks, and two reloads that
    /// overlapped could apply an older file after a newer one.
    private let reloading = NIOLock()
    private let server: FerryServer
    private let liveLevel: LiveLogLevel?
    private let logger: Logger
    public let path: String

    /// Nil when the relay was started without a configuration file.
    /// - Parameters:
    ///   - logging: what the relay's logging was started with.
    ///   - liveLevel: the level every logger reads, which a reload sets.
    public init?(layers: ConfigLayers, server: FerryServer, logging: LoggingOptions, liveLevel: LiveLogLevel?, logger: Logger) {
        guard let path = layers.configPath else { return nil }
        self.path = path
        let accessLog = try? FerryOptions.parse(layers.arguments).accessLog
        self.state = NIOLockedValueBox(State(layers: layers, stamp: layers.fileStamp ?? FileStamp(path), logging: logging, accessLog: accessLog ?? nil))
        self.server = server
        self.liveLevel = liveLevel
        self.logger = logger
    }

    public func reloadIfChanged() {
        let changed = self.state.withLockedValue { $0.stamp != FileStamp(self.path) }
        if changed { _ = self.reload() }
    }

    @discardableResult
    public func reload() -> Bool {
        self.reloading.withLock { self.reloadNow() }
    }

    private func reloadNow() -> Bool {
        let previous = self.state.withLockedValue { $0.layers }
        // The stamp is taken just before the read (``ConfigLayers/fileStamp``): a write during the
        // read shows as a change next time. A file that cannot be read at all is not read again
        // until it changes.
        self.state.withLockedValue { $0.stamp = FileStamp(self.path) }
        let layers: ConfigLayers
        let configuration: FerryConfiguration
        let logging: LoggingOptions
        let accessLog: String?
        do {
            layers = try previous.reread()
            let options: FerryOptions
            do {
                options = try FerryOptions.parse(layers.arguments)
            } catch {
                return self.failed(FerryOptions.message(for: error))
            }
            accessLog = options.accessLog
            do {
                (configuration, logging) = try options.configuration()
            } catch {
                return self.failed(layers.placed(error))
            }
        } catch {
            return self.failed(error.description)
        }
        let (running, runningAccessLog) = self.state.withLockedValue { state in
            state.layers = layers
            if let stamp = layers.fileStamp { state.stamp = stamp }
            return (state.logging, state.accessLog)
        }
        var change = self.server.reload(to: configuration)
        var notes: [String] = []
        if logging.level != running.level, let liveLevel = self.liveLevel {
            liveLevel.set(logging.level)
            self.state.withLockedValue { $0.logging.level = logging.level }
            notes.append("log level \(logging.level)")
        }
        if logging.format != running.format || logging.file != running.file {
            change.needsRestart.append("--log-format, --log-file")
        }
        if accessLog != runningAccessLog {
            change.needsRestart.append("--access-log")
        }
        let summary = change.isEmpty ? (notes.isEmpty ? "no change" : notes.joined(separator: "; ")) : ([change.summary] + notes).joined(separator: "; ")
        self.logger.notice("configuration reloaded: \(summary)", metadata: ["file": "\(self.path)"])
        return true
    }

    private func failed(_ reason: String) -> Bool {
        self.server.reloadFailed()
        self.logger.error("configuration not reloaded; the last good one stays: \(reason)", metadata: ["file": "\(self.path)"])
        return false
    }
}
