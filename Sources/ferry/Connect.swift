import ArgumentParser
import FerryCommandLine
import FerryCore
import Foundation
import Logging
import NIOPosix

/// `ferry connect URL`: the client end. Without `--listen`, standard input and output carry one
/// session and the exit status says how it ended; with it, every local connection gets its own
/// session until SIGTERM (sessions close with 1001 first) or SIGINT.
struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry connect",
        abstract: "Reach a TCP service through a relay's WebSocket route.",
        usage: """
            ferry connect URL [options]
            ferry connect URL --listen ADDR:PORT [--listen unix:/path ...] [options]
            """,
        // Every line fits 80 columns: ArgumentParser wraps longer ones without indenting them.
        discussion: """
            Examples:
              ssh -o ProxyCommand='ferry connect wss://relay.example.com/ssh \\
                    --token-file ~/.ferry-token' host
                  ssh through the relay
              ferry connect wss://relay.example.com/db --listen 127.0.0.1:5432
                  a local port for a database; one session per connection
              ferry connect ws://127.0.0.1:6080/vnc --listen unix:/run/vnc.sock
                  a Unix socket for a VNC viewer
              ferry connect wss://relay.example.com/ssh --proxy http://proxy:3128
                  through an HTTP proxy (HTTPS_PROXY does the same; NO_PROXY
                  and --no-proxy skip it)

            WebSocket has no half-close: when the local side ends its input, the
            session is closed (1000) once the relay has answered.

            With --listen, SIGTERM stops accepting and closes every session with
            1001 before exiting; SIGINT, or a second SIGTERM, stops at once.

            Exit status (without --listen):
            \(Self.exitStatusLines)
            """,
        version: "ferry \(FerryVersion.current)"
    )

    static var exitStatusLines: String {
        ConnectExitStatus.allCases.map { "  \($0.rawValue)  \($0.meaning)" }.joined(separator: "\n")
    }

    @OptionGroup var options: ConnectOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let (configuration, loggingOptions) = try exitOnConfigurationError { try self.options.configuration(environment: environment) }
        let logger = try bootstrapLogging(loggingOptions)
        if let proxy = configuration.proxy {
            // Without the credentials; `from` says which setting to change. At debug in stdio mode,
            // which is otherwise silent when all goes well (ssh shows its standard error).
            let level: Logger.Level = configuration.listeners.isEmpty ? .debug : .info
            logger.log(level: level, "through proxy \(proxy)", metadata: ["proxy": "\(proxy)", "from": "\(proxy.source)", "relay": "\(configuration.url)"])
        }
        let dialer = try exitOnConfigurationError { try WebSocketDialer(configuration: configuration) }
        if configuration.tls.insecure {
            // On standard error whatever --log-level says: this start must not look like a safe one.
            FerryLogHandler.standardError("ferry connect: warning: --insecure: the relay's certificate is not verified; anyone on the path can read and change the session\n")
        }
        let group = MultiThreadedEventLoopGroup.singleton
        guard !configuration.listeners.isEmpty else {
            let end: SessionEnd
            do {
                end = try await exitOnConfigurationError { try await ConnectStdio.run(dialer: dialer, group: group) }
            } catch let failure as ConnectFailure {
                FerryLogHandler.standardError("ferry connect: \(failure)\n")
                throw ExitCode(failure.exitStatus.rawValue)
            }
            if !end.isNormal { FerryLogHandler.standardError("ferry connect: \(end)\n") }
            throw ExitCode(end.exitStatus.rawValue)
        }
        // Trapped before the listeners open; SIGTERM drains (sessions close with 1001), SIGINT or a
        // second SIGTERM stops at once, as for the relay.
        let signals = await StopSignals.trap()
        let (listener, _) = try await exitOnConfigurationError { try await ConnectListener.start(dialer: dialer, group: group, logger: logger) }
        try await runUntilSignalled([listener], signals: signals, logger: logger)
    }
}
