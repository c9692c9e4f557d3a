import Logging
import NIOCore
import Testing

@testable import FerryCommandLine
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
            let (configuration, _) = try FerryFlags.configuration(baseArguments(listen: [text]))
            #expect(configuration.listeners == [expected], "\(text)")
        }
        let (several, _) = try FerryFlags.configuration(baseArguments(listen: ["127.0.0.1:6080", "[::1]:6080"]))
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
            let (configuration, _) = try FerryFlags.configuration(baseArguments(route: [text]))
            #expect(configuration.routes.routes == [expected], "\(text)")
        }
        #expect(BackendTarget.tcp(host: "::1", port: 5900).description == "[::1]:5900")
        #expect(BackendTarget.unix(path: "/run/a.sock").description == "unix:/run/a.sock")
        #expect(Route(path: "/vnc", target: .tcp(host: "h", port: 1)).description == "/vnc=h:1")
    }

    @Test("websockify form: PORT TARGET routes every path")
    func websockifyBarePort() throws {
        let (configuration, logging) = try FerryFlags.configuration(["6080", "localhost:5900"])
        #expect(configuration.listeners == [ListenAddress(host: "0.0.0.0", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "localhost", port: 5900))])
        #expect(configuration.routes.match(requestTarget: "/anything?x=1")?.path == "/")
        #expect(logging == LoggingOptions())
    }

    @Test("--trusted-proxy takes address blocks and 'unix'; anything else names the choices")
    func trustedProxyValues() throws {
        let shortForm = ["6080", "localhost:5900"]
        let (configuration, _) = try FerryFlags.configuration(["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "unix"] + shortForm)
        #expect(configuration.trustedProxies.map(\.description) == ["10.0.0.0/8"])
        #expect(configuration.trustsUnixSocketPeers)

        #expect(try !FerryFlags.configuration(["--trusted-proxy", "10.0.0.0/8"] + shortForm).0.trustsUnixSocketPeers)

        let error = try #require(parseError(["--trusted-proxy", "unix:/run/nginx.sock"] + shortForm))
        #expect(error.description.contains("--trusted-proxy unix:/run/nginx.sock"), "\(error)")
        #expect(error.description.contains("unix for a proxy on a Unix-socket listener"), "\(error)")
    }

    @Test("websockify form: ADDR:PORT TARGET")
    func websockifyAddress() throws {
        let (configuration, _) = try FerryFlags.configuration(["127.0.0.1:6080", "localhost:5900"])
        #expect(configuration.listeners == [ListenAddress(host: "127.0.0.1", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "localhost", port: 5900))])

        let (v6Configuration, _) = try FerryFlags.configuration(["[::1]:6080", "[::1]:5900"])
        #expect(v6Configuration.listeners == [ListenAddress(host: "::1", port: 6080)])
        #expect(v6Configuration.routes.routes == [Route(path: "/", target: .tcp(host: "::1", port: 5900))])
    }

    @Test("defaults when no limit flag is given")
    func defaults() throws {
        let (configuration, logging) = try FerryFlags.configuration(baseArguments())
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
            #expect(try FerryFlags.configuration(baseArguments() + ["--buffer-size", text]).0.limits.bufferSize == expected, "\(text)")
        }
        #expect(try FerryFlags.configuration(baseArguments() + ["--max-message-size", "0"]).0.limits.maxMessageSize == 0)
        #expect(try FerryFlags.configuration(baseArguments() + ["--max-header-size", "1KiB"]).0.limits.maxHeaderSize == 1024)
    }

    @Test("KB, MB and GB are refused with the binary unit to write instead", arguments: [("1MB", "1MiB"), ("64kb", "64KiB"), ("2GB", "2GiB")])
    func decimalUnitsRefused(text: String, suggestion: String) {
        #expect {
            try FerryFlags.configuration(baseArguments() + ["--buffer-size", text])
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
            #expect(try FerryFlags.configuration(baseArguments() + ["--connect-timeout", text]).0.limits.connectTimeout == expected, "\(text)")
        }
        let limits = try FerryFlags.configuration(baseArguments() + ["--idle-timeout", "0", "--ping-interval", "0s"]).0.limits
        #expect(limits.idleTimeout == .zero)
        #expect(limits.pingInterval == .zero)
    }

    @Test("every limit flag lands in its field")
    func allLimits() throws {
        let (configuration, _) = try FerryFlags.configuration(
            baseArguments() + [
                "--max-connections", "5",
                "--buffer-size", "8k",
                "--max-message-size", "1m",
                "--handshake-timeout", "3s",
                "--connect-timeout", "4s",
                "--idle-timeout", "5m",
                "--ping-interval", "6s",
                "--ping-timeout", "7s",
                "--max-header-size", "2k",
                "--allow-origin", "https://app.example",
            ]
        )
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
        let (configuration, _) = try FerryFlags.configuration(baseArguments() + ["--allow-origin", "*"])
        #expect(configuration.originPolicy.allowsAny)
        #expect(configuration.originPolicy.allows(origin: "https://anything.example", host: "relay.example"))
    }

    // MARK: Errors

    @Test("--route /vnc=localhost: names the flag, the value, the problem and the fix")
    func routePortMissing() {
        let error = parseError(baseArguments(route: ["/vnc=localhost:"]))
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
        let description = parseError(baseArguments(route: [value]))?.description ?? ""
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
        let description = parseError(baseArguments(listen: [value]))?.description ?? ""
        // The value is followed by ": ", or by " " when it already ends in a colon.
        #expect(description.hasPrefix(value.hasSuffix(":") ? "--listen \(value) " : "--listen \(value): "), "\(description)")
        #expect(description.contains(problem), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("unix socket targets: an existing non-socket and a missing folder are refused")
    func unixSocketChecks() {
        let notSocket = parseError(baseArguments(route: ["/s=unix:/tmp"]))?.description ?? ""
        #expect(notSocket.contains("--route /s=unix:/tmp"), "\(notSocket)")
        #expect(notSocket.contains("/tmp exists but is not a socket"), "\(notSocket)")

        let missingFolder = parseError(baseArguments(route: ["/s=unix:/nonexistent-ferry-unit/dir/app.sock"]))?.description ?? ""
        #expect(missingFolder.contains("folder /nonexistent-ferry-unit/dir does not exist"), "\(missingFolder)")
    }

    @Test("a path routed twice makes a pool (also when the paths differ only by a trailing slash); the same target twice is refused")
    func duplicateRoutes() throws {
        for routes in [["/vnc=a:1", "/vnc=b:2"], ["/vnc=a:1", "/vnc/=b:2"]] {
            let (configuration, _) = try FerryFlags.configuration(baseArguments(route: routes))
            #expect(configuration.routes.routes.map(\.targets) == [[.tcp(host: "a", port: 1), .tcp(host: "b", port: 2)]], "\(routes)")
        }
        let error = parseError(baseArguments(route: ["/=a:1", "/=a:1"]))
        #expect(error?.flag == "--route")
        #expect(error?.problem.contains("routed twice to a:1") == true, "\(String(describing: error))")
        // websockify's form plus a --route / to the same target is that too.
        let both = baseArguments(listen: [], route: ["/=a:1"]) + ["6080", "a:1"]
        #expect(parseError(both)?.problem.contains("routed twice") == true)
    }

    @Test("missing --listen or --route")
    func missingListenOrRoute() {
        let listenError = parseError(["--route", "/=a:1"])
        #expect(listenError?.flag == "--listen")
        #expect(listenError?.description.contains("no listen address given") == true)

        let routeError = parseError(["--listen", "127.0.0.1:6080"])
        #expect(routeError?.flag == "--route")
        #expect(routeError?.description.contains("no route given") == true)
    }

    @Test("websockify form with the wrong number of arguments or bad values")
    func badPositional() {
        for arguments in [["6080"], ["6080", "a:1", "extra"]] {
            let description = parseError(arguments)?.description ?? ""
            #expect(description.contains("the short form takes two arguments"), "\(description)")
            #expect(description.contains("expected [ADDR:]PORT TARGET"), "\(description)")
            #expect(description.contains(arguments.joined(separator: " ")), "\(description)")
        }
        let portError = parseError(["70000", "localhost:5900"])?.description ?? ""
        #expect(portError.contains("70000"), "\(portError)")
        #expect(portError.contains("port is not a number from 0 to 65535"), "\(portError)")

        let targetError = parseError(["6080", "localhost"])?.description ?? ""
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
        let error = parseError(baseArguments() + option(flag, value))
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
        let error = parseError(baseArguments() + option(flag, value))
        let description = error?.description ?? ""
        #expect(error?.flag == flag)
        #expect(description.hasPrefix("\(flag) \(value):"), "\(description)")
        #expect(description.contains("not a duration"), "\(description)")
        #expect(!description.contains("\n"))
    }

    @Test("the idle timeout hint says 0 turns it off; handshake timeout's does not")
    func zeroHint() {
        #expect(parseError(baseArguments() + ["--idle-timeout", "abc"])?.description.contains("0 turns it off") == true)
        #expect(parseError(baseArguments() + ["--handshake-timeout", "0"])?.description.contains("0 turns it off") == false)
    }

    @Test("bad --max-connections values", arguments: ["0", "-1", "abc", "1k"])
    func badMaxConnections(value: String) {
        let description = parseError(baseArguments() + option("--max-connections", value))?.description ?? ""
        #expect(description.hasPrefix("--max-connections \(value):"), "\(description)")
        #expect(description.contains("not a whole number of at least 1"), "\(description)")
    }

    @Test("bad --allow-origin values", arguments: ["example.com", "ftp://example.com", "https://", "**", "https//example.com"])
    func badAllowOrigin(value: String) {
        let description = parseError(baseArguments() + ["--allow-origin", value])?.description ?? ""
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
        let (_, logging) = try FerryFlags.configuration(baseArguments() + ["--log-level", "DEBUG", "--log-format", "Json"])
        #expect(logging.level == .debug)
        #expect(logging.format == .json)

        for level in Logger.Level.allCases {
            #expect(try LoggingFlags.parse(["--log-level", level.rawValue]).loggingOptions().level == level)
        }
    }

    @Test("an unknown log level names the flag, the value and the choices")
    func badLogLevel() throws {
        let flags = try LoggingFlags.parse(["--log-level", "verbose"])
        let error = #expect(throws: ConfigurationError.self) { try flags.loggingOptions() }
        let description = error?.description ?? ""
        #expect(description.hasPrefix("--log-level verbose: unknown level"), "\(description)")
        for level in Logger.Level.allCases {
            #expect(description.contains(level.rawValue), "\(description)")
        }
    }

    @Test("an unknown log format names the flag, the value and the choices")
    func badLogFormat() throws {
        let flags = try LoggingFlags.parse(["--log-format", "xml"])
        let error = #expect(throws: ConfigurationError.self) { try flags.loggingOptions() }
        #expect(error?.description == "--log-format xml: unknown format; expected text|json")

        // configuration() reports it too.
        #expect(parseError(baseArguments() + ["--log-format", "xml"])?.flag == "--log-format")
    }
}

// MARK: - Helpers

extension ConfigurationUnitTests {
    @Test("the flags behind websockify's features: good values parse, bad ones name the flag")
    func websockifyFeatureFlags() throws {
        let dynamic = baseArguments(route: ["/=dynamic"]) + ["--token-file", "/etc/hostname"]
        let good = dynamic + [
            "--allow-target", "any",
            "--token-from-host",
            "--allow-origin", "https://a.example",
            "--only-listed-origins",
            "--exit-when-idle", "5s",
            "--accept-for", "1m",
            "--run-once",
            "--log-file", "/tmp/ferry.log",
        ]
        let (configuration, logging) = try FerryFlags.configuration(good)
        #expect(configuration.auth.allowsAnyTarget)
        #expect(configuration.auth.allowedTargets.isEmpty)
        #expect(configuration.auth.tokenFromHost)
        #expect(configuration.originPolicy.onlyListed)
        #expect(configuration.lifetime.exitWhenIdle == .seconds(5))
        #expect(configuration.lifetime.acceptFor == .minutes(1))
        #expect(configuration.lifetime.runOnce)
        #expect(logging.file == "/tmp/ferry.log")
        #expect(ServerLifetime().isForever)

        func flag(_ extra: [String], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
            parseError(dynamic + extra, sourceLocation: sourceLocation)?.flag
        }
        #expect(flag(["--allow-target", "any", "--allow-target", "10.0.0.0/8:*"]) == "--allow-target")
        #expect(flag(["--only-listed-origins"]) == "--only-listed-origins")
        #expect(flag(["--jwt-secret-encoding", "hex"]) == "--jwt-secret-encoding")
        #expect(flag(["--jwt-secret-encoding", "base64url"]) == "--jwt-secret-encoding")
        #expect(flag(["--token-sockets", "relative/folder"]) == "--token-sockets")
        #expect(flag(["--token-filenames", "/nonexistent/ferry"]) == "--token-filenames")
        #expect(flag(["--tls-ciphers", "ECDHE+AESGCM"]) == "--tls-ciphers")
        #expect(flag(["--record", "/nonexistent/ferry/rec"]) == "--record")
        #expect(flag(["--exit-when-idle", "0"]) == "--exit-when-idle")
        #expect(flag(["--accept-for", "soon"]) == "--accept-for")
        #expect(flag(["--log-file", "/var/log/"]) == "--log-file")
        let noSource = baseArguments(route: ["/=dynamic"]) + ["--token-from-host"]
        #expect(parseError(noSource)?.flag == "--token-from-host" || parseError(noSource)?.flag == "--route")
    }
}

/// One listener and one route, so each test adds only the flags it is about.
func baseArguments(listen: [String] = ["127.0.0.1:6080"], route: [String] = ["/vnc=localhost:5900"]) -> [String] {
    listen.flatMap { ["--listen", $0] } + route.flatMap { ["--route", $0] }
}

/// `flag value` as a user types it; a value that starts with `-` is attached (`--buffer-size=-5k`),
/// or ArgumentParser would take it for a flag and report the value missing.
private func option(_ flag: String, _ value: String) -> [String] {
    value.hasPrefix("-") ? ["\(flag)=\(value)"] : [flag, value]
}

/// The ConfigurationError the arguments give; records an issue if they give none.
private func parseError(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    let error = FerryFlags.problem(arguments, sourceLocation: sourceLocation)
    if error == nil {
        Issue.record("expected a ConfigurationError for \(arguments)", sourceLocation: sourceLocation)
    }
    return error
}
