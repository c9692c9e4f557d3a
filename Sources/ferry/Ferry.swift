import ArgumentParser
import Foundation
import FerryCommandLine
import FerryCore
import FerryDemo
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `ferry demo …` runs the demo, `ferry connect …` the client end; anything else is the relay.
/// Dispatched by hand because the relay's own positional form (`ferry 6080 localhost:5900`) would
/// otherwise take `demo` for a port.
@main
enum FerryMain {
    static func main() async {
        // SIGHUP's default action ends the process, and `systemctl reload` sends it: ignored from the
        // first instruction, until the relay's reload service takes it over.
        signal(SIGHUP, SIG_IGN)
        let arguments = Array(CommandLine.arguments.dropFirst())
        let program = CommandLine.arguments.first?.split(separator: "/").last ?? ""
        if program == "websockify" {
            await Self.websockify(arguments)
        } else if arguments.first == "websockify" {
            await Self.websockify(Array(arguments.dropFirst()))
        } else if arguments.first == "demo" {
            await Demo.main(Array(arguments.dropFirst()))
        } else if arguments.first == "connect" {
            await Connect.main(Array(arguments.dropFirst()))
        } else {
            await Ferry.main(Self.layered(arguments))
        }
    }

    /// The command line with the `--config` file and the `FERRY_*` variables under it (kept in
    /// ``StartLayers`` for `--check`, for messages and for reloads). `--help` and `--version` read
    /// neither, so that they answer whatever the environment holds.
    static func layered(_ arguments: [String]) -> [String] {
        if arguments.contains(where: { ["--help", "-h", "--version"].contains($0) }) { return arguments }
        do {
            let layers = try ConfigLayers.resolve(commandLine: arguments, environment: ProcessInfo.processInfo.environment)
            StartLayers.current.withLockedValue { $0 = layers }
            for warning in layers.warnings { FerryLogHandler.standardError("ferry: warning: \(warning)\n") }
            return layers.arguments
        } catch {
            FerryLogHandler.standardError("ferry: \(error)\n")
            exit(2)
        }
    }

    /// websockify's command line, translated into Ferry's and then run as Ferry's own.
    static func websockify(_ arguments: [String]) async {
        // websockify has no --version; Ferry's answers in either form.
        if arguments.contains("--version") {
            printNow("ferry \(FerryVersion.current)\n")
            exit(0)
        }
        let translation: WebsockifyCommandLine.Translation
        do {
            translation = try WebsockifyCommandLine.translate(arguments) { path in access(path, F_OK) == 0 }
        } catch {
            FerryLogHandler.standardError("ferry (websockify command line): \(error)\n")
            exit(2)
        }
        if translation.help {
            printNow(WebsockifyCommandLine.usage)
            exit(0)
        }
        if translation.daemon && !Background.isChild { Background.start() }
        for warning in translation.warnings {
            FerryLogHandler.standardError("ferry (websockify command line): warning: \(warning)\n")
        }
        let quoted = translation.loggableArguments.map { $0.contains(where: { " '\"*?$;&|".contains($0) }) || $0.isEmpty ? "'\($0.replacingOccurrences(of: "'", with: "'\\''"))'" : $0 }
        FerryLogHandler.standardError("ferry (websockify command line): running as: ferry \(quoted.joined(separator: " "))\n")
        await Ferry.main(translation.ferryArguments)
    }
}

struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Relay WebSocket connections to TCP and Unix-socket services.",
        usage: """
            ferry --listen ADDR:PORT --route PATH=TARGET [--route ...] [options]
            ferry [options] [ADDR:]PORT TARGET
            ferry websockify [websockify's options and arguments]
            ferry demo [--listen ADDR:PORT] [--chat ADDR:PORT]
            ferry connect URL [--listen ADDR:PORT ...] [options]
            """,
        // Every line fits 80 columns: ArgumentParser wraps longer ones without indenting them.
        discussion: """
            Examples:
              ferry --listen 0.0.0.0:6080 --route /vnc=127.0.0.1:5900 \\
                    --route /ssh=127.0.0.1:22
                  two services on one port, by path
              ferry --listen [::]:6080 --route /=unix:/run/app.sock
                  every path to a Unix socket
              ferry 6080 localhost:5900
                  websockify's short form: every path goes to the target
              ferry websockify --web /usr/share/novnc 6080 localhost:5900
                  websockify's command line (also when run as 'websockify')
              ferry demo
                  a chat room to open in a browser
              ferry connect wss://relay.example.com/ssh
                  the client end: see ferry connect --help

            Sizes take k/KiB, m/MiB, g/GiB (powers of 1024) or bytes; durations
            take ms, s, m, h or seconds. Options are grouped by topic below.
            """,
        version: "ferry \(FerryVersion.current)"
    )

    @OptionGroup var options: FerryOptions

    func run() async throws {
        let (configuration, loggingOptions) = try exitOnConfigurationError { try self.options.configuration() }
        if self.options.configFile.check {
            let layers = StartLayers.current.withLockedValue { $0 }
            printNow(layers.map(EffectiveConfiguration.render) ?? "# ferry --check: the configuration is valid.\n")
            return
        }
        // One level for every logger, which a reload of --config may change.
        let liveLevel = LiveLogLevel(loggingOptions.level)
        let logger = try bootstrapLogging(loggingOptions, live: liveLevel)
        logger.info("starting", metadata: ["version": "\(FerryVersion.current)"])
        FileLimit.raise(forMaxConnections: configuration.limits.maxConnections, logger: logger)
        var accessLogger: Logger?
        if let path = self.options.accessLog {
            guard let sink = FerryLogHandler.appending(to: path) else {
                FerryLogHandler.standardError("ferry: --access-log \(path): cannot be opened for appending\n")
                throw ExitCode(2)
            }
            accessLogger = Logger(label: "ferry.access") { label in FerryLogHandler(label: label, options: loggingOptions, sink: sink) }
        }
        let server = try exitOnConfigurationError {
            try FerryServer(configuration: configuration, logger: logger, accessLogger: accessLogger)
        }
        // Trapped before the listeners open, so that a SIGTERM right after "listening" drains.
        let signals = await StopSignals.trap()
        _ = try await exitOnConfigurationError { try await server.start() }
        Background.reportReady()
        // Always: SIGHUP reloads what can be reloaded, and says so when there is nothing.
        var reloadables = server.reloadables
        if let layers = StartLayers.current.withLockedValue({ $0 }),
            let file = ConfigFileReload(layers: layers, server: server, logging: loggingOptions, liveLevel: liveLevel, logger: logger)
        {
            reloadables.append(file)
        }
        let services: [any Service] = [server, ReloadService(reloadables: reloadables, logger: logger)]
        try await runUntilSignalled(services, signals: signals, logger: logger)
        // `--record` files are written off the event loops: let those of ended sessions reach the disk.
        if let recording = server.environment.recording, await !recording.waitUntilWritten(timeout: .seconds(2)) {
            logger.warning("record files were still being written at exit")
        }
    }
}

struct Demo: AsyncParsableCommand {
    /// The demo stops at once on SIGTERM: no load balancer to wait for.
    static var demoLimits: Limits {
        var limits = Limits()
        limits.drainDelay = .zero
        limits.drainTimeout = .zero
        return limits
    }

    static let configuration = CommandConfiguration(
        commandName: "ferry demo",
        abstract: "Run a chat demo: the relay, a TCP chat service, and a web page that joins it through the relay."
    )

    @Option(help: ArgumentHelp("Where the relay and the page listen.", valueName: "addr:port"))
    var listen: String = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("Where the TCP chat service listens.", valueName: "addr:port"))
    var chat: String = "127.0.0.1:8081"

    @OptionGroup var logging: LoggingFlags

    func run() async throws {
        let loggingOptions = try exitOnConfigurationError { try self.logging.loggingOptions() }
        let listen = try exitOnConfigurationError { try ListenAddress.parse(self.listen, allowUnix: false) }
        let chat = try exitOnConfigurationError { try ListenAddress.parse(self.chat, flag: "--chat", allowUnix: false) }
        let configuration = try exitOnConfigurationError {
            try FerryConfiguration(
                listeners: [listen],
                routes: [Route(path: "/chat", target: .tcp(host: chat.host, port: chat.port))],
                limits: Self.demoLimits,
                staticPages: ["/": DemoPage.staticPage(chat: chat)]
            )
        }
        let logger = try bootstrapLogging(loggingOptions)
        let chatService = ChatService()
        _ = try await exitOnConfigurationError {
            do {
                return try await chatService.start(host: chat.host, port: chat.port)
            } catch {
                throw ListenFailure.configurationError(flag: "--chat", value: chat.description, error: error)
            }
        }
        let server = try exitOnConfigurationError { try FerryServer(configuration: configuration, logger: logger) }
        let signals = await StopSignals.trap()
        _ = try await exitOnConfigurationError { try await server.start() }
        printNow(DemoBanner.text(listen: listen, chat: chat))
        try await runUntilSignalled([server], signals: signals, logger: logger)
    }
}

/// Prints a configuration problem as one line on standard error and exits with status 2.
func exitOnConfigurationError<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ConfigurationError {
        FerryLogHandler.standardError("ferry: \(StartLayers.placed(error))\n")
        throw ExitCode(2)
    }
}

func exitOnConfigurationError<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ConfigurationError {
        FerryLogHandler.standardError("ferry: \(StartLayers.placed(error))\n")
        throw ExitCode(2)
    }
}

/// Logs to standard error, and also to `--log-file` when given (a file that cannot be opened ends the
/// start with status 2).
func bootstrapLogging(_ options: LoggingOptions, live: LiveLogLevel? = nil) throws -> Logger {
    var sink: @Sendable (String) -> Void = FerryLogHandler.standardError
    if let path = options.file {
        guard let file = FerryLogHandler.appending(to: path) else {
            FerryLogHandler.standardError("ferry: --log-file \(path): cannot be opened for appending\n")
            throw ExitCode(2)
        }
        sink = { line in
            FerryLogHandler.standardError(line)
            file(line)
        }
    }
    LoggingSystem.bootstrap { [sink] label in FerryLogHandler(label: label, options: options, live: live, sink: sink) }
    return Logger(label: "ferry")
}

/// Runs until SIGTERM (a graceful drain) or SIGINT (stop now); a second SIGTERM during a drain also
/// stops at once. A service that returns by itself (a server whose --exit-when-idle, --accept-for or
/// --run-once has ended) shuts the others down gracefully, and the process exits 0.
/// `signals` come from `StopSignals.trap()`, called before the listeners open.
func runUntilSignalled(_ services: [any Service], signals: UnixSignalsSequence, logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: .init(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            logger: logger
        )
    )
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        tasks.addTask {
            var terminations = 0
            for await signal in signals {
                if signal == .sigint {
                    logger.notice("SIGINT: stopping now")
                    return
                }
                terminations += 1
                if terminations == 2 {
                    logger.notice("second SIGTERM: stopping now")
                    return
                }
                await group.triggerGracefulShutdown()
            }
        }
        // Whichever ends first (the services, or a stop-now signal) ends the other.
        try await tasks.next()
        tasks.cancelAll()
    }
}

/// SIGTERM and SIGINT, trapped by the caller before it opens any listener. Left to the service group,
/// they were registered only as it started, after "listening" was logged: a SIGTERM sent at once
/// (a supervisor, a test, a quick Ctrl-C) met the default action and killed the process undrained.
/// A signal that arrives before the group runs waits in the sequence.
enum StopSignals {
    static func trap() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sigterm, .sigint)
    }
}

/// Writes to standard output at once (a pipe would otherwise hold the text back behind the logs).
func printNow(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDOUT_FILENO, bytes.baseAddress, bytes.count) }
}
