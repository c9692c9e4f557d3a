import Logging
import NIOCore
import Testing

@testable import FerryCore

@Suite("Unit: command-line configuration")
struct ConfigurationUnitTests {
    // MARK: Good configurations

    @Test("listen addresses: IPv4, bracketed IPv6, host names, empty host")
    func listenAddresses() throws {
        let cases: [(String, ListenAddress)] = [
            ("0.0.0.0:6080", ListenAddress(host: "0.0.0.0", port: 6080)),
            ("127.0.0.1:1", ListenAddress(host: "127.0.0.1", port: 1)),
            ("[::]:6080", ListenAddress(host: "::", port: 6080)),
            ("[::1]:65535", ListenAddress(host: "::1", port: 65535)),
            ("[fe80::1%eth0]:80", ListenAddress(host: "fe80::1%eth0", port: 80)),
            ("localhost:8080", ListenAddress(host: "localhost", port: 8080)),
            ("relay.example.com:443", ListenAddress(host: "relay.example.com", port: 443)),
            (":6080", ListenAddress(host: "0.0.0.0", port: 6080)),
        ]
        for (text, expected) in cases {
            let (configuration, _) = try baseOptions(listen: [text]).parse()
            #expect(configuration.listeners == [expected], "\(text)")
        }
        let (several, _) = try baseOptions(listen: ["127.0.0.1:6080", "[::1]:6080"]).parse()
        #expect(several.listeners == [ListenAddress(host: "127.0.0.1", port: 6080), ListenAddress(host: "::1", port: 6080)])
        #expect(ListenAddress(host: "::1", port: 6080).description == "[::1]:6080")
        #expect(ListenAddress(host: "0.0.0.0", port: 6080).description == "0.0.0.0:6080")
    }

    @Test("route targets: host:port, [v6]:port, unix:/path")
    func routeTargets() throws {
        let cases: [(String, Route)] = [
            ("/vnc=localhost:5900", Route(path: "/vnc", target: .tcp(host: "localhost", port: 5900))),
            ("/vnc=127.0.0.1:5900", Route(path: "/vnc", target: .tcp(host: "127.0.0.1", port: 5900))),
            ("/v6=[::1]:5900", Route(path: "/v6", target: .tcp(host: "::1", port: 5900))),
            ("/a/b/=backend.internal:22", Route(path: "/a/b", target: .tcp(host: "backend.internal", port: 22))),
            ("/=localhost:1", Route(path: "/", target: .tcp(host: "localhost", port: 1))),
            ("/sock=unix:/tmp/ferry-unit-test-nonexistent.sock", Route(path: "/sock", target: .unix(path: "/tmp/ferry-unit-test-nonexistent.sock"))),
        ]
        for (text, expected) in cases {
            let (configuration, _) = try baseOptions(route: [text]).parse()
            #expect(configuration.routes.routes == [expected], "\(text)")
        }
        #expect(BackendTarget.tcp(host: "::1", port: 5900).description == "[::1]:5900")
        #expect(BackendTarget.unix(path: "/run/a.sock").description == "unix:/run/a.sock")
        #expect(Route(path: "/vnc", target: .tcp(host: "h", port: 1)).description == "/vnc=h:1")
    }

    @Test("websockify form: PORT TARGET routes every path")
    func websockifyBarePort() throws {
        var options = CommandLineOptions()
        options.positional = ["6080", "localhost:5900"]
        let (configuration, logging) = try options.parse()
        #expect(configuration.listeners == [ListenAddress(host: "0.0.0.0", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "localhost", port: 5900))])
        #expect(configuration.routes.match(requestTarget: "/anything?x=1")?.path == "/")
        #expect(logging == LoggingOptions())
    }

    @Test("--trusted-proxy takes address blocks and 'unix'; anything else names the choices")
    func trustedProxyValues() throws {
        var options = CommandLineOptions()
        options.positional = ["6080", "localhost:5900"]
        options.trustedProxy = ["10.0.0.0/8", "unix"]
        let (configuration, _) = try options.parse()
        #expect(configuration.trustedProxies.map(\.description) == ["10.0.0.0/8"])
        #expect(configuration.trustsUnixSocketPeers)

        options.trustedProxy = ["10.0.0.0/8"]
        #expect(try !options.parse().0.trustsUnixSocketPeers)

        options.trustedProxy = ["unix:/run/nginx.sock"]
        let error = try #require(parseError(options))
        #expect(error.description.contains("--trusted-proxy unix:/run/nginx.sock"), "\(error)")
        #expect(error.description.contains("unix for a proxy on a Unix-socket listener"), "\(error)")
    }

    @Test("websockify form: ADDR:PORT TARGET")
    func websockifyAddress() throws {
        var options = CommandLineOptions()
        options.positional = ["127.0.0.1:6080", "localhost:5900"]
        let (configuration, _) = try options.parse()
        #expect(configuration.listeners == [ListenAddress(host: "127.0.0.1", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "localhost", port: 5900))])

        var v6 = CommandLineOptions()
        v6.positional = ["[::1]:6080", "[::1]:5900"]
        let (v6Configuration, _) = try v6.parse()
        #expect(v6Configuration.listeners == [ListenAddress(host: "::1", port: 6080)])
        #expect(v6Configuration.routes.routes == [Route(path: "/", target: .tcp(host: "::1", port: 5900))])
    }

    @Test("defaults when no limit flag is given")
    func defaults() throws {
        let (configuration, logging) = try baseOptions().parse()
        #expect(configuration.limits == Limits())
        #expect(configuration.originPolicy == OriginPolicy())
        #expect(logging.level == .info)
        #expect(logging.format == .text)
    }

    @Test("sizes with units")
    func sizes() throws {
        let cases: [(String, Int)] = [
            ("4096", 4096), ("64k", 65536), ("256KiB", 262_144), ("1m", 1 << 20), ("1MiB", 1 << 20), ("2G", 2 << 30),
            ("8192b", 8192),
        ]
        for (text, expected) in cases {
            var options = baseOptions()
            options.bufferSize = text
            #expect(try options.parse().0.limits.bufferSize == expected, "\(text)")
        }
        var zero = baseOptions()
        zero.maxMessageSize = "0"
        #expect(try zero.parse().0.limits.maxMessageSize == 0)
        var header = baseOptions()
        header.maxHeaderSize = "1KiB"
        #expect(try header.parse().0.limits.maxHeaderSize == 1024)
    }

    @Test("KB, MB and GB are refused with the binary unit to write instead", arguments: [("1MB", "1MiB"), ("64kb", "64KiB"), ("2GB", "2GiB")])
    func decimalUnitsRefused(text: String, suggestion: String) {
        var options = baseOptions()
        options.bufferSize = text
        #expect {
            try options.parse()
        } throws: { error in
            let line = "\(error)"
            return line.contains("--buffer-size \(text)") && line.contains("powers of 1000 or of 1024") && line.contains(suggestion)
        }
    }

    @Test("durations with units")
    func durations() throws {
        let cases: [(String, TimeAmount)] = [
            ("500ms", .milliseconds(500)), ("30s", .seconds(30)), ("30", .seconds(30)), ("5m", .minutes(5)), ("5min", .minutes(5)),
            ("1h", .hours(1)), ("2H", .hours(2)),
        ]
        for (text, expected) in cases {
            var options = baseOptions()
            options.connectTimeout = text
            #expect(try options.parse().0.limits.connectTimeout == expected, "\(text)")
        }
        var zero = baseOptions()
        zero.idleTimeout = "0"
        zero.pingInterval = "0s"
        let limits = try zero.parse().0.limits
        #expect(limits.idleTimeout == .zero)
        #expect(limits.pingInterval == .zero)
    }

    @Test("every limit flag lands in its field")
    func allLimits() throws {
        var options = baseOptions()
        options.maxConnections = "5"
        options.bufferSize = "8k"
        options.maxMessageSize = "1m"
        options.handshakeTimeout = "3s"
        options.connectTimeout = "4s"
        options.idleTimeout = "5m"
        options.pingInterval = "6s"
        options.pingTimeout = "7s"
        options.maxHeaderSize = "2k"
        options.allowOrigin = ["https://app.example"]
        let (configuration, _) = try options.parse()
        var expected = Limits()
        expected.maxConnections = 5
        expected.bufferSize = 8192
        expected.maxMessageSize = 1 << 20
        expected.handshakeTimeout = .seconds(3)
        expected.connectTimeout = .seconds(4)
        expected.idleTimeout = .minutes(5)
        expected.pingInterval = .seconds(6)
        expected.pingTimeout = .seconds(7)
        expected.maxHeaderSize = 2048
        #expect(configuration.limits == expected)
        #expect(configuration.originPolicy == OriginPolicy(allowed: ["https://app.example"]))
    }

    @Test("--allow-origin '*' allows any origin")
    func allowAnyOrigin() throws {
        var options = baseOptions()
        options.allowOrigin = ["*"]
        let (configuration, _) = try options.parse()
        #expect(configuration.originPolicy.allowsAny)
        #expect(configuration.originPolicy.allows(origin: "https://anything.example", host: "relay.example"))
    }

    // MARK: Errors

    @Test("--route /vnc=localhost: names the flag, the value, the problem and the fix")
    func routePortMissing() {
        let error = parseError(baseOptions(route: ["/vnc=localhost:"]))
        let description = error?.description ?? ""
        #expect(description.contains("--route /vnc=localhost:"))
        #expect(description.contains("port is missing"))
        #expect(description.contains("expected PATH=HOST:PORT or PATH=unix:/path"))
        #expect(!description.contains("\n"))
    }

    @Test(
        "bad --route values",
        arguments: [
            ("/vnc", "'=' is missing"),
            ("vnc=localhost:5900", "path must start with /"),
            ("/vnc?x=localhost:5900", "may not contain"),
            ("/v nc=localhost:5900", "may not contain"),
            ("/vnc=", "target is missing"),
            ("/vnc=localhost", "port is missing"),
            ("/vnc=:5900", "host is missing"),
            ("/vnc=localhost:0", "is not a number from 1 to 65535"),
            ("/vnc=localhost:65536", "is not a number from 1 to 65535"),
            ("/vnc=localhost:http", "is not a number from 1 to 65535"),
            ("/vnc=::1:5900", "IPv6 addresses must be in brackets"),
            ("/vnc=[::1:5900", "no closing ]"),
            ("/vnc=[::1]5900", "port is missing"),
            ("/vnc=[::1]:", "port is missing"),
            ("/vnc=unix:relative.sock", "unix socket path must be absolute"),
            ("/vnc=unix:/" + String(repeating: "x", count: 107), "longer than 107 bytes"),
        ]
    )
    func badRoute(value: String, problem: String) {
        let description = parseError(baseOptions(route: [value]))?.description ?? ""
        #expect(description.hasPrefix("--route \(value)"), "\(description)")
        #expect(description.contains(problem), "\(description)")
        #expect(description.contains("expected PATH=HOST:PORT or PATH=unix:/path"), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test(
        "bad --listen values",
        arguments: [
            ("6080", "port is missing"),
            ("localhost", "port is missing"),
            ("localhost:", "port is missing"),
            ("localhost:70000", "is not a number from 1 to 65535"),
            ("::1:6080", "IPv6 addresses must be in brackets"),
            ("[::1", "no closing ]"),
            ("[::1]", "port is missing"),
        ]
    )
    func badListen(value: String, problem: String) {
        let description = parseError(baseOptions(listen: [value]))?.description ?? ""
        // The value is followed by ": ", or by " " when it already ends in a colon.
        #expect(description.hasPrefix(value.hasSuffix(":") ? "--listen \(value) " : "--listen \(value): "), "\(description)")
        #expect(description.contains(problem), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("unix socket targets: an existing non-socket and a missing folder are refused")
    func unixSocketChecks() {
        let notSocket = parseError(baseOptions(route: ["/s=unix:/tmp"]))?.description ?? ""
        #expect(notSocket.contains("--route /s=unix:/tmp"), "\(notSocket)")
        #expect(notSocket.contains("/tmp exists but is not a socket"), "\(notSocket)")

        let missingFolder = parseError(baseOptions(route: ["/s=unix:/nonexistent-ferry-unit/dir/app.sock"]))?.description ?? ""
        #expect(missingFolder.contains("folder /nonexistent-ferry-unit/dir does not exist"), "\(missingFolder)")
    }

    @Test("duplicate route paths are refused, also when they differ only by a trailing slash")
    func duplicateRoutes() {
        for routes in [["/vnc=a:1", "/vnc=b:2"], ["/vnc=a:1", "/vnc/=b:2"], ["/=a:1", "/=a:1"]] {
            let error = parseError(baseOptions(route: routes))
            #expect(error?.flag == "--route", "\(routes)")
            #expect(error?.problem.contains("routed twice") == true, "\(routes): \(String(describing: error))")
        }
        // websockify form plus a --route / is a duplicate too.
        var both = baseOptions(route: ["/=a:1"])
        both.listen = []
        both.positional = ["6080", "b:2"]
        #expect(parseError(both)?.problem.contains("routed twice") == true)
    }

    @Test("missing --listen or --route")
    func missingListenOrRoute() {
        var noListen = CommandLineOptions()
        noListen.route = ["/=a:1"]
        let listenError = parseError(noListen)
        #expect(listenError?.flag == "--listen")
        #expect(listenError?.description.contains("no listen address given") == true)

        var noRoute = CommandLineOptions()
        noRoute.listen = ["127.0.0.1:6080"]
        let routeError = parseError(noRoute)
        #expect(routeError?.flag == "--route")
        #expect(routeError?.description.contains("no route given") == true)
    }

    @Test("websockify form with the wrong number of arguments or bad values")
    func badPositional() {
        for arguments in [["6080"], ["6080", "a:1", "extra"]] {
            var options = CommandLineOptions()
            options.positional = arguments
            let description = parseError(options)?.description ?? ""
            #expect(description.contains("the short form takes two arguments"), "\(description)")
            #expect(description.contains("expected [ADDR:]PORT TARGET"), "\(description)")
            #expect(description.contains(arguments.joined(separator: " ")), "\(description)")
        }
        var badPort = CommandLineOptions()
        badPort.positional = ["70000", "localhost:5900"]
        let portError = parseError(badPort)?.description ?? ""
        #expect(portError.contains("70000"), "\(portError)")
        #expect(portError.contains("port is not a number from 0 to 65535"), "\(portError)")

        var badTarget = CommandLineOptions()
        badTarget.positional = ["6080", "localhost"]
        let targetError = parseError(badTarget)?.description ?? ""
        #expect(targetError.hasPrefix("target localhost:"), "\(targetError)")
        #expect(targetError.contains("port is missing"), "\(targetError)")
    }

    @Test(
        "bad sizes",
        arguments: [
            ("--buffer-size", "12parsecs"), ("--buffer-size", "abc"), ("--buffer-size", "1000"), ("--buffer-size", "-5k"),
            ("--buffer-size", ""), ("--buffer-size", "1.5m"), ("--max-message-size", "lots"), ("--max-header-size", "512"),
            ("--buffer-size", "99999999999g"),
        ]
    )
    func badSize(flag: String, value: String) {
        var options = baseOptions()
        switch flag {
        case "--buffer-size": options.bufferSize = value
        case "--max-message-size": options.maxMessageSize = value
        default: options.maxHeaderSize = value
        }
        let error = parseError(options)
        let description = error?.description ?? ""
        #expect(error?.flag == flag)
        #expect(description.hasPrefix(value.isEmpty ? "\(flag):" : "\(flag) \(value):"), "\(description)")
        #expect(description.contains("not a size"), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test(
        "bad durations",
        arguments: [
            ("--idle-timeout", "abc"), ("--idle-timeout", "5 minutes"), ("--idle-timeout", "-1s"), ("--handshake-timeout", "0"),
            ("--connect-timeout", "0s"), ("--ping-timeout", "0ms"), ("--ping-interval", "1d"), ("--ping-interval", "1.5s"),
            ("--connect-timeout", "99999999999s"),
        ]
    )
    func badDuration(flag: String, value: String) {
        var options = baseOptions()
        switch flag {
        case "--idle-timeout": options.idleTimeout = value
        case "--handshake-timeout": options.handshakeTimeout = value
        case "--connect-timeout": options.connectTimeout = value
        case "--ping-timeout": options.pingTimeout = value
        default: options.pingInterval = value
        }
        let error = parseError(options)
        let description = error?.description ?? ""
        #expect(error?.flag == flag)
        #expect(description.hasPrefix("\(flag) \(value):"), "\(description)")
        #expect(description.contains("not a duration"), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("the idle timeout hint says 0 turns it off; handshake timeout's does not")
    func zeroHint() {
        var idle = baseOptions()
        idle.idleTimeout = "abc"
        #expect(parseError(idle)?.description.contains("0 turns it off") == true)
        var handshake = baseOptions()
        handshake.handshakeTimeout = "0"
        #expect(parseError(handshake)?.description.contains("0 turns it off") == false)
    }

    @Test("bad --max-connections values", arguments: ["0", "-1", "abc", "1k"])
    func badMaxConnections(value: String) {
        var options = baseOptions()
        options.maxConnections = value
        let description = parseError(options)?.description ?? ""
        #expect(description.hasPrefix("--max-connections \(value):"), "\(description)")
        #expect(description.contains("not a whole number of at least 1"), "\(description)")
    }

    @Test("bad --allow-origin values", arguments: ["example.com", "ftp://example.com", "https://", "**", "https//example.com"])
    func badAllowOrigin(value: String) {
        var options = baseOptions()
        options.allowOrigin = [value]
        let description = parseError(options)?.description ?? ""
        #expect(description.hasPrefix("--allow-origin \(value):"), "\(description)")
        #expect(description.contains("not an origin"), "\(description)")
    }

    @Test("ConfigurationError.description without a value or an expectation")
    func errorDescriptionForms() {
        #expect(ConfigurationError(flag: "--x", value: "", problem: "p").description == "--x: p")
        #expect(ConfigurationError(flag: "--x", value: "v", problem: "p").description == "--x v: p")
        #expect(ConfigurationError(flag: "--x", value: "v", problem: "p", expected: "e").description == "--x v: p; expected e")
    }

    // MARK: Route matching

    @Test("a route matches its own path and what lies below it at a / boundary")
    func routeMatching() {
        let vnc = Route(path: "/vnc", target: .tcp(host: "h", port: 1))
        #expect(vnc.matches("/vnc"))
        #expect(vnc.matches("/vnc/"))
        #expect(vnc.matches("/vnc/x"))
        #expect(vnc.matches("/vnc/x/y"))
        #expect(!vnc.matches("/vncx"))
        #expect(!vnc.matches("/vn"))
        #expect(!vnc.matches("/"))
        #expect(!vnc.matches("/other/vnc"))

        let root = Route(path: "/", target: .tcp(host: "h", port: 1))
        for path in ["/", "/vnc", "/vncx", "/a/b/c", ""] {
            #expect(root.matches(Substring(path)), "\(path)")
        }
    }

    @Test("the route table picks the longest match and ignores the query")
    func routeTable() throws {
        let table = try RouteTable([
            Route(path: "/", target: .tcp(host: "root", port: 1)),
            Route(path: "/vnc", target: .tcp(host: "vnc", port: 2)),
            Route(path: "/vnc/x", target: .tcp(host: "vncx", port: 3)),
        ])
        #expect(table.match(requestTarget: "/vnc")?.path == "/vnc")
        #expect(table.match(requestTarget: "/vncx")?.path == "/")
        #expect(table.match(requestTarget: "/vnc/x")?.path == "/vnc/x")
        #expect(table.match(requestTarget: "/vnc/xy")?.path == "/vnc")
        #expect(table.match(requestTarget: "/vnc/x/1?q=2")?.path == "/vnc/x")
        #expect(table.match(requestTarget: "/vnc?/vnc/x")?.path == "/vnc")
        #expect(table.match(requestTarget: "/elsewhere")?.path == "/")

        let noRoot = try RouteTable([Route(path: "/vnc", target: .tcp(host: "vnc", port: 2))])
        #expect(noRoot.match(requestTarget: "/vncx") == nil)
        #expect(noRoot.match(requestTarget: "/") == nil)
    }

    // MARK: Logging options

    @Test("log level and format are parsed case-insensitively")
    func loggingOptions() throws {
        var options = baseOptions()
        options.logLevel = "DEBUG"
        options.logFormat = "Json"
        let (_, logging) = try options.parse()
        #expect(logging.level == .debug)
        #expect(logging.format == .json)

        for level in Logger.Level.allCases {
            var each = CommandLineOptions()
            each.logLevel = level.rawValue
            #expect(try each.loggingOptions().level == level)
        }
    }

    @Test("an unknown log level names the flag, the value and the choices")
    func badLogLevel() {
        var options = CommandLineOptions()
        options.logLevel = "verbose"
        let error = #expect(throws: ConfigurationError.self) { try options.loggingOptions() }
        let description = error?.description ?? ""
        #expect(description.hasPrefix("--log-level verbose: unknown level"), "\(description)")
        for level in Logger.Level.allCases {
            #expect(description.contains(level.rawValue), "\(description)")
        }
    }

    @Test("an unknown log format names the flag, the value and the choices")
    func badLogFormat() {
        var options = CommandLineOptions()
        options.logFormat = "xml"
        let error = #expect(throws: ConfigurationError.self) { try options.loggingOptions() }
        #expect(error?.description == "--log-format xml: unknown format; expected text|json")

        // parse() reports it too.
        var full = baseOptions()
        full.logFormat = "xml"
        #expect(parseError(full)?.flag == "--log-format")
    }
}

// MARK: - Helpers

/// Options with one listener and one route, so each test changes only what it is about.
extension ConfigurationUnitTests {
    @Test("the flags behind websockify's features: good values parse, bad ones name the flag")
    func websockifyFeatureFlags() throws {
        var good = baseOptions(route: ["/=dynamic"])
        good.tokenFile = "/etc/hostname"
        good.allowTarget = ["any"]
        good.tokenFromHost = true
        good.allowOrigin = ["https://a.example"]
        good.onlyListedOrigins = true
        good.exitWhenIdle = "5s"
        good.acceptFor = "1m"
        good.runOnce = true
        good.logFile = "/tmp/ferry.log"
        let (configuration, logging) = try good.parse()
        #expect(configuration.auth.allowsAnyTarget)
        #expect(configuration.auth.allowedTargets.isEmpty)
        #expect(configuration.auth.tokenFromHost)
        #expect(configuration.originPolicy.onlyListed)
        #expect(configuration.lifetime.exitWhenIdle == .seconds(5))
        #expect(configuration.lifetime.acceptFor == .minutes(1))
        #expect(configuration.lifetime.runOnce)
        #expect(logging.file == "/tmp/ferry.log")
        #expect(ServerLifetime().isForever)

        func flag(_ adjust: (inout CommandLineOptions) -> Void) -> String? {
            var options = baseOptions(route: ["/=dynamic"])
            options.tokenFile = "/etc/hostname"
            adjust(&options)
            return parseError(options)?.flag
        }
        #expect(flag { $0.allowTarget = ["any", "10.0.0.0/8:*"] } == "--allow-target")
        #expect(flag { $0.onlyListedOrigins = true } == "--only-listed-origins")
        #expect(flag { $0.jwtSecretEncoding = "hex" } == "--jwt-secret-encoding")
        #expect(flag { $0.jwtSecretEncoding = "base64url" } == "--jwt-secret-encoding")
        #expect(flag { $0.tokenSockets = "relative/folder" } == "--token-sockets")
        #expect(flag { $0.tokenFilenames = "/nonexistent/ferry" } == "--token-filenames")
        #expect(flag { $0.tlsCiphers = "ECDHE+AESGCM" } == "--tls-ciphers")
        #expect(flag { $0.record = "/nonexistent/ferry/rec" } == "--record")
        #expect(flag { $0.exitWhenIdle = "0" } == "--exit-when-idle")
        #expect(flag { $0.acceptFor = "soon" } == "--accept-for")
        #expect(flag { $0.logFile = "/var/log/" } == "--log-file")
        var noSource = baseOptions(route: ["/=dynamic"])
        noSource.tokenFromHost = true
        #expect(parseError(noSource)?.flag == "--token-from-host" || parseError(noSource)?.flag == "--route")
    }
}

private func baseOptions(listen: [String] = ["127.0.0.1:6080"], route: [String] = ["/vnc=localhost:5900"]) -> CommandLineOptions {
    var options = CommandLineOptions()
    options.listen = listen
    options.route = route
    return options
}

/// The error `parse()` throws; records an issue if it does not throw.
private func parseError(_ options: CommandLineOptions, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    do {
        let (configuration, _) = try options.parse()
        Issue.record("expected an error, got listeners \(configuration.listeners)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
