import ArgumentParser
import FerryCore
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

/// `ferry demo …` runs the demo; anything else is the relay. Dispatched by hand because the relay's
/// own positional form (`ferry 6080 localhost:5900`) would otherwise take `demo` for a port.
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
        } else {
            await Ferry.main(arguments)
        }
    }

    /// websockify's command line, translated into Ferry's and then run as Ferry's own.
    static func websockify(_ arguments: [String]) async {
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
              ferry demo
            """,
        discussion: """
            Examples:
              ferry --listen 0.0.0.0:6080 --route /vnc=127.0.0.1:5900 --route /ssh=127.0.0.1:22
              ferry --listen [::]:6080 --route /=unix:/run/app.sock
              ferry 6080 localhost:5900   (websockify style: every path goes to the target)
              ferry demo                  (a chat room you can open in a browser)
              ferry websockify --web /usr/share/novnc 6080 localhost:5900
                                          (websockify's command line; also when run as 'websockify')

            Sizes take k/KiB, m/MiB, g/GiB or bytes; durations take ms, s, m, h or seconds.
            See 'ferry demo --help' for the demo's options.
            """
    )

    @Option(help: ArgumentHelp("Address to accept connections on, ADDR:PORT (IPv6 in brackets) or unix:/path[,mode=0600] (a Unix socket, mode 0600 unless given); add ,proxy-protocol behind a load balancer that sends PROXY headers. Repeatable.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("PATH=TARGET[,OPTION...]: TARGET is HOST:PORT, tls://HOST:PORT, unix:/path or dynamic (from the token); options auth=token, client-cn=NAME, tls-verify=false. A path matches itself and what lies below it; the longest match wins. Repeatable.", valueName: "path=target"))
    var route: [String] = []

    @Option(help: ArgumentHelp("Also allow this browser Origin (SCHEME://HOST[:PORT], or * for any). Without it, only clients with no Origin or pages from the host they connect to get in, and that host must be one of the relay's names (see --server-name). Repeatable.", valueName: "origin"))
    var allowOrigin: [String] = []

    @Option(help: ArgumentHelp("A name clients reach the relay by (relay.example.com, or *.example.com for every name below it): pages served from it may connect. IP addresses, localhost, the machine's host name and the TLS certificate's names count already; any other Host is refused unless its Origin is listed with --allow-origin (DNS rebinding). Repeatable.", valueName: "name"))
    var serverName: [String] = []

    @Flag(help: "Only origins given with --allow-origin get in; clients without Origin and pages from the relay's own host are refused (websockify's ExpectOrigin).")
    var onlyListedOrigins = false

    @Option(help: ArgumentHelp("Sessions open at once, handshakes included; more get 503. (default: 10000)", valueName: "n"))
    var maxConnections: String?

    @Option(help: ArgumentHelp("Connections open at once from one client address, handshakes included: a direct client's excess connections are closed at accept; a client behind a trusted proxy or PROXY header gets 503. 0: no limit. (default: 0)", valueName: "n"))
    var maxConnectionsPerIp: String?

    @Option(help: ArgumentHelp("Handshakes per second from one client address; more get 429. 0: no limit. (default: 0)", valueName: "n"))
    var maxHandshakesPerSecondPerIp: String?

    @Option(help: ArgumentHelp("Bytes queued per direction per session before the relay stops reading the other side, e.g. 256KiB; with the read under way when it fills, under 2 × SIZE. (default: 256KiB)", valueName: "size"))
    var bufferSize: String?

    @Option(help: ArgumentHelp("Largest client message; bigger ones are closed with 1009. 0 means no limit (payloads are streamed). (default: 0)", valueName: "size"))
    var maxMessageSize: String?

    @Option(help: ArgumentHelp("Time to complete the handshake, backend connect included, e.g. 10s. (default: 10s)", valueName: "duration"))
    var handshakeTimeout: String?

    @Option(help: ArgumentHelp("Time to connect to the backend, capped at what is left of --handshake-timeout; past it the client gets 504. (default: 10s)", valueName: "duration"))
    var connectTimeout: String?

    @Option(help: ArgumentHelp("Close a session with no data either way for this long; 0 turns it off. (default: 1h)", valueName: "duration"))
    var idleTimeout: String?

    @Option(help: ArgumentHelp("Ping a client not heard from for this long; 0 turns pings off. (default: 30s)", valueName: "duration"))
    var pingInterval: String?

    @Option(help: ArgumentHelp("Drop a client that has not answered a ping within this time. (default: 30s)", valueName: "duration"))
    var pingTimeout: String?

    @Option(help: ArgumentHelp("Largest handshake request head; bigger ones get 431. (default: 16KiB)", valueName: "size"))
    var maxHeaderSize: String?

    @Option(help: ArgumentHelp("PEM certificate chain for wss://; give --tls-key after it. Repeat the pair to serve several certificates, chosen by SNI (the first one otherwise).", valueName: "file"))
    var tlsCert: [String] = []

    @Option(help: ArgumentHelp("PEM private key of the --tls-cert before it (unencrypted).", valueName: "file"))
    var tlsKey: [String] = []

    @Flag(help: "Refuse plaintext: a plain HTTP client gets 400 'use wss://'. Without it one port serves ws:// and wss://.")
    var tlsOnly = false

    @Option(help: ArgumentHelp("Lowest TLS version accepted: 1.2 or 1.3. (default: 1.2)", valueName: "version"))
    var tlsMinVersion: String?

    @Option(help: ArgumentHelp("TLS 1.2 cipher suites, as an OpenSSL cipher string. (default: BoringSSL's)", valueName: "list"))
    var tlsCiphers: String?

    @Option(help: ArgumentHelp("PEM CA that signs client certificates (mutual TLS).", valueName: "file"))
    var tlsClientCa: String?

    @Option(help: ArgumentHelp("With --tls-client-ca: require (no valid certificate, no handshake) or optional. (default: require)", valueName: "mode"))
    var tlsClientAuth: String?

    @Option(help: ArgumentHelp("PEM CA trusted for tls:// backends, besides the system store.", valueName: "file"))
    var backendCa: String?

    @Option(help: ArgumentHelp("HTTP Basic authentication for the upgrade: USER:PASSWORD (visible to other local users in the process list), or @FILE with one USER:PASSWORD per line. Repeatable.", valueName: "credentials"))
    var basicAuth: [String] = []

    @Flag(help: "Also require --basic-auth for the --web files (websockify's --web-auth).")
    var basicAuthWeb = false

    @Option(help: ArgumentHelp("Also read the token from this cookie. (default: cookies are not read)", valueName: "name"))
    var tokenCookie: String?

    @Option(help: ArgumentHelp("websockify TokenFile ('token: host:port' lines), or a folder of them; reloaded on change, removed tokens end their sessions.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("A folder of files, each named by a token and holding its target HOST:PORT (websockify's TokenFileName).", valueName: "dir"))
    var tokenFilenames: String?

    @Option(help: ArgumentHelp("A folder of Unix sockets; a token is the name of one (websockify's UnixDomainSocketDirectory).", valueName: "dir"))
    var tokenSockets: String?

    @Flag(help: "The token is the host name the client asked for (Host header, without port), as websockify's --host-token; no other place is read.")
    var tokenFromHost = false

    @Option(help: ArgumentHelp("JWT key: an HMAC secret (HS256/384/512), a PEM key (RS256, ES256, EdDSA) or a JWKS file.", valueName: "file"))
    var jwtKey: String?

    @Option(help: ArgumentHelp("How an HMAC secret in --jwt-key is written: raw (the file's bytes) or base64url (as websockify's JWTTokenApi reads it). (default: raw)", valueName: "encoding"))
    var jwtSecretEncoding: String?

    @Option(help: ArgumentHelp("Require this JWT 'iss'.", valueName: "issuer"))
    var jwtIssuer: String?

    @Option(help: ArgumentHelp("Require this JWT 'aud'.", valueName: "audience"))
    var jwtAudience: String?

    @Flag(help: "Close a session with 1008 when its JWT expires.")
    var jwtEnforceExpiryOnSession = false

    @Option(help: ArgumentHelp("A dynamic target allowed by tokens: HOST:PORTS or CIDR:PORTS (PORTS: 5900, 5900-5999 or *), unix:/path, or any (trust every target the token source names, as websockify does). Repeatable; with none, dynamic targets are refused.", valueName: "rule"))
    var allowTarget: [String] = []

    @Option(help: ArgumentHelp("Serve Prometheus /metrics (and /healthz) here, never on the public listeners.", valueName: "addr:port"))
    var adminListen: String?

    @Option(help: ArgumentHelp("A load balancer (address or CIDR) whose PROXY headers (listeners with ,proxy-protocol) and X-Forwarded-For/Forwarded headers are believed; unix: believe X-Forwarded-For/Forwarded from clients of Unix-socket listeners (a proxy on this host). Repeatable.", valueName: "cidr"))
    var trustedProxy: [String] = []

    @Option(help: ArgumentHelp("On SIGTERM, answer /readyz with 503 this long before closing the listeners, so load balancers notice. (default: 5s)", valueName: "duration"))
    var drainDelay: String?

    @Option(help: ArgumentHelp("On SIGTERM, let live sessions go on this long after the listeners close; then they get close 1001. (default: 25s)", valueName: "duration"))
    var drainTimeout: String?

    @Option(help: ArgumentHelp("Serve files from this folder for plain GET/HEAD requests (a browser client such as noVNC).", valueName: "dir"))
    var web: String?

    @Option(help: ArgumentHelp("Security headers on served HTML (nosniff, a Content-Security-Policy whose connect-src 'self' allows WebSockets to the page's own host): default or none.", valueName: "setting"))
    var webHeaders: String?

    @Option(help: ArgumentHelp("Also append the session-end lines to this file (in the --log-format).", valueName: "file"))
    var accessLog: String?

    @Option(help: ArgumentHelp("Record every session's payloads to PREFIX.1, PREFIX.2, ... in websockify's --record format. Holds what users type: protect the folder.", valueName: "prefix"))
    var record: String?

    @Option(help: ArgumentHelp("Exit once no session has been open for this long (websockify's --idle-timeout).", valueName: "duration"))
    var exitWhenIdle: String?

    @Option(help: ArgumentHelp("Stop accepting connections this long after starting; exit when the last session ends (websockify's --timeout).", valueName: "duration"))
    var acceptFor: String?

    @Flag(help: "Stop accepting after the first WebSocket session and exit when it ends.")
    var runOnce = false

    @OptionGroup var logging: LoggingFlags

    @Argument(help: ArgumentHelp("websockify style: [ADDR:]PORT TARGET, where TARGET is HOST:PORT or unix:/path.", valueName: "listen-and-target"))
    var positional: [String] = []

    func run() async throws {
        var options = CommandLineOptions()
        options.listen = self.listen
        options.route = self.route
        options.positional = self.positional
        options.allowOrigin = self.allowOrigin
        options.serverName = self.serverName
        options.maxConnections = self.maxConnections
        options.maxConnectionsPerIP = self.maxConnectionsPerIp
        options.maxHandshakesPerSecondPerIP = self.maxHandshakesPerSecondPerIp
        options.bufferSize = self.bufferSize
        options.maxMessageSize = self.maxMessageSize
        options.handshakeTimeout = self.handshakeTimeout
        options.connectTimeout = self.connectTimeout
        options.idleTimeout = self.idleTimeout
        options.pingInterval = self.pingInterval
        options.pingTimeout = self.pingTimeout
        options.maxHeaderSize = self.maxHeaderSize
        options.logLevel = self.logging.logLevel
        options.logFormat = self.logging.logFormat
        options.tlsCert = self.tlsCert
        options.tlsKey = self.tlsKey
        options.tlsOnly = self.tlsOnly
        options.tlsMinVersion = self.tlsMinVersion
        options.tlsClientCA = self.tlsClientCa
        options.tlsClientAuth = self.tlsClientAuth
        options.backendCA = self.backendCa
        options.tokenCookie = self.tokenCookie
        options.tokenFile = self.tokenFile
        options.jwtKey = self.jwtKey
        options.jwtIssuer = self.jwtIssuer
        options.jwtAudience = self.jwtAudience
        options.jwtEnforceExpiryOnSession = self.jwtEnforceExpiryOnSession
        options.allowTarget = self.allowTarget
        options.trustedProxy = self.trustedProxy
        options.adminListen = self.adminListen
        options.drainDelay = self.drainDelay
        options.drainTimeout = self.drainTimeout
        options.web = self.web
        options.webHeaders = self.webHeaders
        options.tokenFilenames = self.tokenFilenames
        options.tokenSockets = self.tokenSockets
        options.tokenFromHost = self.tokenFromHost
        options.jwtSecretEncoding = self.jwtSecretEncoding
        options.onlyListedOrigins = self.onlyListedOrigins
        options.tlsCiphers = self.tlsCiphers
        options.logFile = self.logging.logFile
        options.record = self.record
        options.exitWhenIdle = self.exitWhenIdle
        options.acceptFor = self.acceptFor
        options.runOnce = self.runOnce
        options.basicAuth = self.basicAuth
        options.basicAuthWeb = self.basicAuthWeb

        let (configuration, loggingOptions) = try exitOnConfigurationError { try options.parse() }
        let logger = try bootstrapLogging(loggingOptions)
        FileLimit.raise(forMaxConnections: configuration.limits.maxConnections, logger: logger)
        var accessLogger: Logger?
        if let path = self.accessLog {
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
        let services: [any Service] = [server, ReloadService(reloadables: server.reloadables, logger: logger)]
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
        var options = CommandLineOptions()
        options.logLevel = self.logging.logLevel
        options.logFormat = self.logging.logFormat
        options.logFile = self.logging.logFile
        let loggingOptions = try exitOnConfigurationError { try options.loggingOptions() }
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
        FerryLogHandler.standardError("ferry: \(error)\n")
        throw ExitCode(2)
    }
}

func exitOnConfigurationError<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ConfigurationError {
        FerryLogHandler.standardError("ferry: \(error)\n")
        throw ExitCode(2)
    }
}

/// Logs to standard error, and also to `--log-file` when given (a file that cannot be opened ends the
/// start with status 2).
func bootstrapLogging(_ options: LoggingOptions) throws -> Logger {
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
    LoggingSystem.bootstrap { [sink] label in FerryLogHandler(label: label, options: options, sink: sink) }
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

/// Logging flags, shared by the relay and the demo.
struct LoggingFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Least severe level logged: trace, debug, info, notice, warning, error, critical. (default: info)", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Log line format: text, or json (one object per line). (default: text)", valueName: "format"))
    var logFormat: String?

    @Option(help: ArgumentHelp("Also append log lines to this file.", valueName: "file"))
    var logFile: String?
}
