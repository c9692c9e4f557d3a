// Unit tests of the websockify command-line translator: for each of websockify's forms and flags, the
// exact Ferry arguments it produces, the warnings for what Ferry ignores, and the errors (naming the
// flag and the Ferry way) for what Ferry does not do. Where it is easy, the Ferry arguments are also
// run through Ferry's own parser (`FerryOptions`, via `FerryFlags`), as the `ferry` front would.

import Foundation
import Testing

@testable import FerryCommandLine
@testable import FerryCore

@Suite("Websockify: command-line translation")
struct WebsockifyCommandLineTests {
    // MARK: The three forms

    @Test("[source_addr:]source_port target_addr:target_port")
    func plainForm() throws {
        let bare = try translate(["6080", "localhost:5900"])
        #expect(bare.ferryArguments == ["--listen", "0.0.0.0:6080", "--route", "/=localhost:5900", "--idle-timeout", "0"])
        #expect(bare.warnings.isEmpty)
        #expect(!bare.daemon && !bare.help)
        #expect(bare.ferryArguments.contains(sequence: ["--listen", "0.0.0.0:6080", "--route", "/=localhost:5900"]))

        let withAddress = try translate(["127.0.0.1:6080", "10.0.0.5:5900"])
        #expect(withAddress.ferryArguments == ["--listen", "127.0.0.1:6080", "--route", "/=10.0.0.5:5900", "--idle-timeout", "0"])

        let named = try translate(["localhost:6080", "vnc.internal:5901"])
        #expect(named.ferryArguments.contains(sequence: ["--listen", "localhost:6080", "--route", "/=vnc.internal:5901"]))

        // Ferry's own parser takes the result: one listener, every path to the target.
        let (configuration, _) = try FerryFlags.configuration(withAddress.ferryArguments)
        #expect(configuration.listeners == [ListenAddress(host: "127.0.0.1", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "10.0.0.5", port: 5900))])
        #expect(configuration.limits.idleTimeout == .zero, "websockify never ends a quiet session")
    }

    @Test("IPv6: [::1]:6080, ::1:6080, a ::1:5900 target, bracketed targets, -6 and --prefer-ipv6")
    func ipv6Forms() throws {
        let bracketed = try translate(["[::1]:6080", "::1:5900"])
        #expect(bracketed.ferryArguments.contains(sequence: ["--listen", "[::1]:6080", "--route", "/=[::1]:5900"]))
        let unbracketed = try translate(["::1:6080", "[fe80::5]:5900"])
        #expect(unbracketed.ferryArguments.contains(sequence: ["--listen", "[::1]:6080", "--route", "/=[fe80::5]:5900"]))
        let any = try translate(["[::]:6080", "2001:db8::7:5900"])
        #expect(any.ferryArguments.contains(sequence: ["--listen", "[::]:6080", "--route", "/=[2001:db8::7]:5900"]))

        // A bare port listens on every interface: IPv4 only, unless IPv6 is preferred.
        for flag in ["-6", "--prefer-ipv6"] {
            let preferred = try translate([flag, "6080", "localhost:5900"])
            #expect(preferred.ferryArguments.contains(sequence: ["--listen", "[::]:6080"]), "\(flag)")
        }
        // An explicit address stays what it is.
        let explicit = try translate(["-6", "127.0.0.1:6080", "localhost:5900"])
        #expect(explicit.ferryArguments.contains(sequence: ["--listen", "127.0.0.1:6080"]))

        let (configuration, _) = try FerryFlags.configuration(bracketed.ferryArguments)
        #expect(configuration.listeners == [ListenAddress(host: "::1", port: 6080)])
        #expect(configuration.routes.routes == [Route(path: "/", target: .tcp(host: "::1", port: 5900))])
    }

    @Test("--token-plugin CLASS [source_addr:]source_port: a dynamic route, targets trusted as websockify does")
    func tokenPluginForm() throws {
        let files = try TranslationFiles()
        let tokenFile = try translate(["--token-plugin", "TokenFile", "--token-source", files.tokenFile, "127.0.0.1:6080"])
        #expect(
            tokenFile.ferryArguments == [
                "--listen", "127.0.0.1:6080", "--token-file", files.tokenFile, "--route", "/=dynamic", "--allow-target", "any", "--idle-timeout", "0",
            ]
        )
        let (configuration, _) = try FerryFlags.configuration(tokenFile.ferryArguments)
        #expect(configuration.routes.routes.map(\.path) == ["/"])
        #expect(configuration.routes.routes.map(\.target) == [.dynamic])
        #expect(configuration.auth.tokenFilePath == files.tokenFile)
        #expect(configuration.auth.allowsAnyTarget)
    }

    @Test("--unix-target=FILE [source_addr:]source_port")
    func unixTargetForm() throws {
        let joined = try translate(["--unix-target=/run/vnc.sock", "6080"])
        #expect(joined.ferryArguments == ["--listen", "0.0.0.0:6080", "--route", "/=unix:/run/vnc.sock", "--idle-timeout", "0"])
        let separate = try translate(["--unix-target", "/run/vnc.sock", "127.0.0.1:6080"])
        #expect(separate.ferryArguments.contains(sequence: ["--listen", "127.0.0.1:6080", "--route", "/=unix:/run/vnc.sock"]))

        // websockify makes the path absolute; so does the translation (from the current folder).
        let relative = try translate(["--unix-target", "vnc.sock", "6080"])
        let folder = FileManager.default.currentDirectoryPath
        #expect(relative.ferryArguments.contains(sequence: ["--route", "/=unix:" + (folder.hasSuffix("/") ? folder : folder + "/") + "vnc.sock"]))
        let dotted = try translate(["--unix-target", "./vnc.sock", "6080"])
        #expect(dotted.ferryArguments == relative.ferryArguments)

        // A target as well is one argument too many, as in websockify.
        let error = try #require(translationError(["--unix-target=/run/vnc.sock", "6080", "localhost:5900"]))
        #expect(error.flag == "arguments" && error.problem.contains("too many"), "\(error)")

        let (configuration, _) = try FerryFlags.configuration(joined.ferryArguments)
        #expect(configuration.routes.routes == [Route(path: "/", target: .unix(path: "/run/vnc.sock"))])
    }

    // MARK: Option syntax

    @Test("values joined with = and given separately translate the same")
    func joinedAndSeparateValues() throws {
        let pairs: [([String], [String])] = [
            (["--heartbeat=5"], ["--heartbeat", "5"]),
            (["--token-plugin=TokenFile", "--token-source=/etc/tokens"], ["--token-plugin", "TokenFile", "--token-source", "/etc/tokens"]),
            (["--web=/usr/share/novnc"], ["--web", "/usr/share/novnc"]),
            (["--log-file=/var/log/ws.log"], ["--log-file", "/var/log/ws.log"]),
            (["--idle-timeout=30", "--timeout=10"], ["--idle-timeout", "30", "--timeout", "10"]),
            (["--auth-plugin=ExpectOrigin", "--auth-source=https://a.example"], ["--auth-plugin", "ExpectOrigin", "--auth-source", "https://a.example"]),
        ]
        for (joined, separate) in pairs {
            let target = joined.first!.hasPrefix("--token") ? [] : ["localhost:5900"]
            let a = try translate(joined + ["6080"] + target)
            let b = try translate(separate + ["6080"] + target)
            #expect(a == b, "\(joined) vs \(separate)")
        }
        // An '=' inside the value is kept.
        let source = try translate(["--token-plugin=TokenFile", "--token-source=/etc/a=b", "6080"])
        #expect(source.ferryArguments.contains(sequence: ["--token-file", "/etc/a=b"]))
    }

    @Test("grouped short flags: -vD6")
    func groupedShortFlags() throws {
        let grouped = try translate(["-vD6", "6080", "localhost:5900"])
        let spread = try translate(["-v", "-D", "-6", "6080", "localhost:5900"])
        #expect(grouped == spread)
        #expect(grouped.daemon)
        #expect(grouped.ferryArguments == ["--log-level", "debug", "--listen", "[::]:6080", "--route", "/=localhost:5900", "--idle-timeout", "0"])
        #expect(grouped.warnings.count == 1)
        #expect(grouped.warnings.first?.hasPrefix("-D/--daemon") == true)

        let unknown = try #require(translationError(["-vx", "6080", "localhost:5900"]))
        #expect(unknown.flag == "-x", "\(unknown)")
        #expect(unknown.description.contains("expected -v, -D, -6"), "\(unknown)")
    }

    @Test("-h and --help ask for the usage")
    func help() throws {
        for flag in ["-h", "--help"] {
            let translation = try translate([flag])
            #expect(translation.help, "\(flag)")
            #expect(translation.ferryArguments.isEmpty)
        }
        #expect(WebsockifyCommandLine.usage.contains("--token-plugin=CLASS"))
    }

    @Test("Ferry's own flags are passed on as given, after the translation")
    func ferryFlagsPassedOn() throws {
        let translation = try translate(["--backend-ca", "/etc/ca.pem", "--allow-origin=https://app.example", "--jwt-enforce-expiry-on-session", "6080", "localhost:5900"])
        #expect(
            translation.ferryArguments == [
                "--listen", "0.0.0.0:6080", "--route", "/=localhost:5900", "--idle-timeout", "0",
                "--backend-ca", "/etc/ca.pem", "--allow-origin=https://app.example", "--jwt-enforce-expiry-on-session",
            ]
        )
    }

    // MARK: TLS

    @Test("--cert alone (cert and key in one file, websockify's self.pem), --cert with --key, and the default ./self.pem")
    func certificates() throws {
        let one = try translate(["--cert", "/etc/ws/self.pem", "6080", "localhost:5900"], existing: ["/etc/ws/self.pem"])
        #expect(one.ferryArguments.contains(sequence: ["--tls-cert", "/etc/ws/self.pem", "--tls-key", "/etc/ws/self.pem"]))
        #expect(!one.ferryArguments.contains("--tls-only"), "websockify serves ws:// and wss:// on one port")

        let two = try translate(["--cert=/etc/ws/cert.pem", "--key=/etc/ws/key.pem", "6080", "localhost:5900"], existing: ["/etc/ws/cert.pem", "/etc/ws/key.pem"])
        #expect(two.ferryArguments.contains(sequence: ["--tls-cert", "/etc/ws/cert.pem", "--tls-key", "/etc/ws/key.pem"]))

        // websockify's default certificate is ./self.pem, used when it is there.
        let implicit = try translate(["6080", "localhost:5900"], existing: ["self.pem"])
        #expect(implicit.ferryArguments.contains(sequence: ["--tls-cert", "self.pem", "--tls-key", "self.pem"]))

        // The key named but not there.
        let noKey = try #require(translationError(["--cert", "/c.pem", "--key", "/k.pem", "6080", "localhost:5900"], existing: ["/c.pem"]))
        #expect(noKey.flag == "--key" && noKey.value == "/k.pem", "\(noKey)")
        #expect(noKey.description.contains("expected"), "\(noKey)")

        // A certificate named but missing: plain ws:// with a warning (websockify would fail each wss:// client).
        let missing = try translate(["--cert", "/nowhere.pem", "6080", "localhost:5900"])
        #expect(!missing.ferryArguments.contains("--tls-cert"))
        #expect(missing.warnings.contains { $0.hasPrefix("--cert /nowhere.pem: file not found") }, "\(missing.warnings)")
        // TLS-only settings without a certificate are warned about, not passed on.
        let loose = try translate(["--verify-client", "--ssl-version", "tlsv1_3", "--key", "/k.pem", "6080", "localhost:5900"])
        #expect(!loose.ferryArguments.contains { $0.hasPrefix("--tls-") })
        for flag in ["--verify-client", "--ssl-version", "--key"] {
            #expect(loose.warnings.contains { $0.hasPrefix(flag) && $0.contains("no certificate") }, "\(flag): \(loose.warnings)")
        }

        let files = try TranslationFiles()
        let (configuration, _) = try FerryFlags.configuration(try translate(["--cert", files.certificate, "--key", files.key, "6080", "localhost:5900"], existing: files.all).ferryArguments)
        #expect(configuration.tls?.pairs.map(\.certificatePath) == [files.certificate])
        #expect(configuration.tls?.pairs.map(\.keyPath) == [files.key])
    }

    @Test("--ssl-only: --tls-only with a certificate, an error without one")
    func sslOnly() throws {
        let translation = try translate(["--ssl-only", "--cert", "/c.pem", "6080", "localhost:5900"], existing: ["/c.pem"])
        #expect(translation.ferryArguments.contains("--tls-only"))

        let error = try #require(translationError(["--ssl-only", "--cert", "/missing.pem", "6080", "localhost:5900"]))
        #expect(error.flag == "--ssl-only" && error.value == "/missing.pem", "\(error)")
        #expect(error.description.contains("expected --cert FILE"), "\(error)")
        // Without --cert, websockify looks for ./self.pem.
        let implicit = try #require(translationError(["--ssl-only", "6080", "localhost:5900"]))
        #expect(implicit.value == "self.pem", "\(implicit)")
    }

    @Test("--ssl-target: a tls:// target; not with token plugins or Unix targets")
    func sslTarget() throws {
        let translation = try translate(["--ssl-target", "6080", "vnc.internal:5901"])
        #expect(translation.ferryArguments.contains(sequence: ["--route", "/=tls://vnc.internal:5901"]))
        let v6 = try translate(["--ssl-target", "6080", "[::1]:5901"])
        #expect(v6.ferryArguments.contains(sequence: ["--route", "/=tls://[::1]:5901"]))

        let tokens = try #require(translationError(["--ssl-target", "--token-plugin", "TokenFile", "--token-source", "/t", "6080"]))
        #expect(tokens.flag == "--ssl-target" && tokens.description.contains("instead"), "\(tokens)")
        let unix = try #require(translationError(["--ssl-target", "--unix-target", "/run/a.sock", "6080"]))
        #expect(unix.flag == "--ssl-target" && unix.description.contains("expected"), "\(unix)")

        let (configuration, _) = try FerryFlags.configuration(translation.ferryArguments)
        #expect(configuration.routes.routes.first?.target == .tls(host: "vnc.internal", port: 5901))
    }

    @Test("--verify-client --cafile: required client certificates; --cafile alone is ignored with a warning")
    func verifyClient() throws {
        let existing: Set<String> = ["/c.pem", "/ca.pem"]
        let translation = try translate(["--cert", "/c.pem", "--verify-client", "--cafile", "/ca.pem", "6080", "localhost:5900"], existing: existing)
        #expect(translation.ferryArguments.contains(sequence: ["--tls-client-ca", "/ca.pem", "--tls-client-auth", "require"]))

        let noCA = try #require(translationError(["--cert", "/c.pem", "--verify-client", "6080", "localhost:5900"], existing: existing))
        #expect(noCA.flag == "--verify-client", "\(noCA)")
        #expect(noCA.description.contains("instead, give --cafile FILE"), "\(noCA)")

        let caOnly = try translate(["--cert", "/c.pem", "--cafile", "/ca.pem", "6080", "localhost:5900"], existing: existing)
        #expect(!caOnly.ferryArguments.contains("--tls-client-ca"))
        #expect(caOnly.warnings.contains { $0.hasPrefix("--cafile: ignored without --verify-client") }, "\(caOnly.warnings)")

        let files = try TranslationFiles()
        let parsed = try translate(["--cert", files.certificate, "--verify-client", "--cafile", files.certificate, "6080", "localhost:5900"], existing: files.all)
        let (configuration, _) = try FerryFlags.configuration(parsed.ferryArguments)
        #expect(configuration.tls?.clientCAPath == files.certificate)
        #expect(configuration.tls?.clientAuthentication == .require)
    }

    @Test("--ssl-version and --ssl-ciphers")
    func sslVersionAndCiphers() throws {
        let existing: Set<String> = ["/c.pem"]
        func arguments(_ extra: [String]) throws -> WebsockifyCommandLine.Translation {
            try translate(["--cert", "/c.pem"] + extra + ["6080", "localhost:5900"], existing: existing)
        }
        #expect(try arguments(["--ssl-version", "tlsv1_3"]).ferryArguments.contains(sequence: ["--tls-min-version", "1.3"]))
        #expect(try arguments(["--ssl-version=tlsv1_2"]).ferryArguments.contains(sequence: ["--tls-min-version", "1.2"]))
        #expect(!(try arguments(["--ssl-version", "default"]).ferryArguments.contains("--tls-min-version")))
        let old = try arguments(["--ssl-version", "tlsv1_1"])
        #expect(!old.ferryArguments.contains("--tls-min-version"))
        #expect(old.warnings.contains { $0.hasPrefix("--ssl-version tlsv1_1") }, "\(old.warnings)")
        let bad = try #require(translationError(["--cert", "/c.pem", "--ssl-version", "sslv3", "6080", "localhost:5900"], existing: existing))
        #expect(bad.flag == "--ssl-version" && bad.value == "sslv3" && bad.description.contains("expected default, tlsv1_1, tlsv1_2 or tlsv1_3"), "\(bad)")

        #expect(try arguments(["--ssl-ciphers", "ECDHE+AESGCM"]).ferryArguments.contains(sequence: ["--tls-ciphers", "ECDHE+AESGCM"]))
    }

    // MARK: Web, keepalive, lifetime, recording

    @Test("--web DIR and --file-only (Ferry never lists folders)")
    func web() throws {
        let files = try TranslationFiles()
        let translation = try translate(["--web", files.directory, "--file-only", "6080", "localhost:5900"])
        #expect(translation.ferryArguments.contains(sequence: ["--web", files.directory]))
        #expect(!translation.ferryArguments.contains("--file-only"))
        #expect(translation.warnings.isEmpty)
        let (configuration, _) = try FerryFlags.configuration(translation.ferryArguments)
        #expect(configuration.web?.root == files.directory)
    }

    @Test("--heartbeat N is Ferry's ping interval; 0 is none")
    func heartbeat() throws {
        #expect(try translate(["--heartbeat", "15", "6080", "localhost:5900"]).ferryArguments.contains(sequence: ["--ping-interval", "15s"]))
        #expect(!(try translate(["--heartbeat", "0", "6080", "localhost:5900"]).ferryArguments.contains("--ping-interval")))
        let bad = try #require(translationError(["--heartbeat", "soon", "6080", "localhost:5900"]))
        #expect(bad.flag == "--heartbeat" && bad.description.contains("expected --heartbeat 30"), "\(bad)")
        let negative = try #require(translationError(["--heartbeat=-1", "6080", "localhost:5900"]))
        #expect(negative.flag == "--heartbeat", "\(negative)")

        let (configuration, _) = try FerryFlags.configuration(try translate(["--heartbeat", "15", "6080", "localhost:5900"]).ferryArguments)
        #expect(configuration.limits.pingInterval == .seconds(15))
    }

    @Test("--idle-timeout and --timeout stop the server, as in websockify; sessions get no idle limit")
    func serverLifetime() throws {
        let idle = try translate(["--idle-timeout", "30", "6080", "localhost:5900"])
        #expect(idle.ferryArguments.contains(sequence: ["--exit-when-idle", "30s"]))
        #expect(idle.ferryArguments.contains(sequence: ["--idle-timeout", "0"]))
        #expect(idle.ferryArguments.filter { $0 == "--idle-timeout" }.count == 1, "Ferry's session idle timeout is set once, to 0")
        #expect(idle.warnings.contains { $0.hasPrefix("--idle-timeout 30:") && $0.contains("--exit-when-idle") }, "\(idle.warnings)")

        let timeout = try translate(["--timeout", "10", "6080", "localhost:5900"])
        #expect(timeout.ferryArguments.contains(sequence: ["--accept-for", "10s"]))
        #expect(timeout.warnings.contains { $0.hasPrefix("--timeout 10:") && $0.contains("--accept-for") }, "\(timeout.warnings)")

        let zero = try translate(["--idle-timeout", "0", "--timeout", "0", "6080", "localhost:5900"])
        #expect(!zero.ferryArguments.contains("--exit-when-idle") && !zero.ferryArguments.contains("--accept-for"))

        #expect(try translate(["--run-once", "6080", "localhost:5900"]).ferryArguments.contains("--run-once"))
        let bad = try #require(translationError(["--timeout", "1.5", "6080", "localhost:5900"]))
        #expect(bad.flag == "--timeout", "\(bad)")

        let (configuration, _) = try FerryFlags.configuration(try translate(["--idle-timeout", "30", "--timeout", "10", "--run-once", "6080", "localhost:5900"]).ferryArguments)
        #expect(configuration.lifetime.exitWhenIdle == .seconds(30))
        #expect(configuration.lifetime.acceptFor == .seconds(10))
        #expect(configuration.lifetime.runOnce)
        #expect(configuration.limits.idleTimeout == .zero)
    }

    @Test("--unix-listen and --unix-listen-mode")
    func unixListen() throws {
        let translation = try translate(["--unix-listen=/run/ws.sock", "--unix-listen-mode=660", "localhost:5900"])
        #expect(translation.ferryArguments == ["--listen", "unix:/run/ws.sock,mode=660", "--route", "/=localhost:5900", "--idle-timeout", "0"])
        let noMode = try translate(["--unix-listen", "/run/ws.sock", "localhost:5900"])
        #expect(noMode.ferryArguments.contains(sequence: ["--listen", "unix:/run/ws.sock"]))
        let relative = try translate(["--unix-listen", "ws.sock", "localhost:5900"])
        #expect(relative.ferryArguments[1].hasPrefix("unix:/") && relative.ferryArguments[1].hasSuffix("/ws.sock"), "\(relative.ferryArguments)")

        let bad = try #require(translationError(["--unix-listen=/run/ws.sock", "--unix-listen-mode=rw", "localhost:5900"]))
        #expect(bad.flag == "--unix-listen-mode" && bad.description.contains("expected"), "\(bad)")
        let notOctal = try #require(translationError(["--unix-listen=/run/ws.sock", "--unix-listen-mode=680", "localhost:5900"]))
        #expect(notOctal.flag == "--unix-listen-mode", "\(notOctal)")

        let orphan = try translate(["--unix-listen-mode", "600", "6080", "localhost:5900"])
        #expect(orphan.warnings.contains { $0.hasPrefix("--unix-listen-mode: ignored") }, "\(orphan.warnings)")
    }

    @Test("--record PREFIX: an absolute prefix")
    func record() throws {
        #expect(try translate(["--record", "/var/rec/session", "6080", "localhost:5900"]).ferryArguments.contains(sequence: ["--record", "/var/rec/session"]))
        let relative = try translate(["--record=rec", "6080", "localhost:5900"])
        let index = try #require(relative.ferryArguments.firstIndex(of: "--record"))
        #expect(relative.ferryArguments[index + 1].hasPrefix("/") && relative.ferryArguments[index + 1].hasSuffix("/rec"))
    }

    // MARK: Logging and accepted-with-a-warning flags

    @Test("-v/--verbose and --log-file")
    func logging() throws {
        for flag in ["-v", "--verbose"] {
            #expect(try translate([flag, "6080", "localhost:5900"]).ferryArguments.contains(sequence: ["--log-level", "debug"]), "\(flag)")
        }
        #expect(try translate(["--log-file", "/var/log/ws.log", "6080", "localhost:5900"]).ferryArguments.contains(sequence: ["--log-file", "/var/log/ws.log"]))
        let (_, logging) = try FerryFlags.configuration(try translate(["-v", "--log-file", "/tmp/ws.log", "6080", "localhost:5900"]).ferryArguments)
        #expect(logging.level == .debug)
        #expect(logging.file == "/tmp/ws.log")
    }

    @Test("-D, --daemon, --libserver, --traffic: accepted with a warning and nothing passed on")
    func acceptedWithWarning() throws {
        let cases: [(String, String)] = [
            ("-D", "-D/--daemon"), ("--daemon", "-D/--daemon"), ("--libserver", "--libserver"), ("--traffic", "--traffic"),
        ]
        let plain = try translate(["6080", "localhost:5900"])
        for (flag, prefix) in cases {
            let translation = try translate([flag, "6080", "localhost:5900"])
            #expect(translation.ferryArguments == plain.ferryArguments, "\(flag)")
            #expect(translation.warnings.count == 1 && translation.warnings[0].hasPrefix(prefix + ":"), "\(flag): \(translation.warnings)")
        }
        #expect(try translate(["--daemon", "6080", "localhost:5900"]).daemon)
        #expect(!(try translate(["--libserver", "6080", "localhost:5900"]).daemon))
        let all = try translate(["-D", "--libserver", "--traffic", "6080", "localhost:5900"])
        #expect(all.warnings.count == 3)
        // --wrap-mode only matters with a wrapped program.
        #expect(try translate(["--wrap-mode", "exit", "6080", "localhost:5900"]).warnings.contains { $0.hasPrefix("--wrap-mode") })
    }

    // MARK: Token plugins

    @Test("token plugins: TokenFile, ReadOnlyTokenFile, TokenFileName, JWTTokenApi, JSONTokenApi, UnixDomainSocketDirectory, --target-config")
    func tokenPlugins() throws {
        let files = try TranslationFiles()
        let cases: [(String, String, [String])] = [
            ("TokenFile", files.tokenFile, ["--token-file", files.tokenFile]),
            ("ReadOnlyTokenFile", files.tokenFile, ["--token-file", files.tokenFile]),
            ("websockify.token_plugins.TokenFile", files.tokenFile, ["--token-file", files.tokenFile]),
            ("TokenFile", files.tokenDirectory, ["--token-file", files.tokenDirectory]),
            ("TokenFileName", files.tokenDirectory, ["--token-filenames", files.tokenDirectory]),
            ("JWTTokenApi", files.jwtSecret, ["--jwt-key", files.jwtSecret, "--jwt-secret-encoding", "base64url"]),
            ("websockify.token_plugins.JWTTokenApi", files.jwtSecret, ["--jwt-key", files.jwtSecret, "--jwt-secret-encoding", "base64url"]),
            ("UnixDomainSocketDirectory", files.directory, ["--token-sockets", files.directory]),
            ("JSONTokenApi", "http://127.0.0.1:9/token/%s", ["--auth-url", "http://127.0.0.1:9/token/%s"]),
            ("websockify.token_plugins.JSONTokenApi", "https://auth.example/t?token=%s", ["--auth-url", "https://auth.example/t?token=%s"]),
        ]
        for (plugin, source, expected) in cases {
            let translation = try translate(["--token-plugin", plugin, "--token-source", source, "127.0.0.1:6080"])
            #expect(translation.ferryArguments == ["--listen", "127.0.0.1:6080"] + expected + ["--route", "/=dynamic", "--allow-target", "any", "--idle-timeout", "0"], "\(plugin)")
            #expect(translation.warnings.isEmpty, "\(plugin): \(translation.warnings)")
            let (configuration, _) = try FerryFlags.configuration(translation.ferryArguments)
            #expect(configuration.routes.routes.map(\.target) == [.dynamic], "\(plugin)")
        }

        // A relative socket folder becomes absolute (Ferry requires it, websockify does it).
        let relative = try translate(["--token-plugin", "UnixDomainSocketDirectory", "--token-source", "sockets", "6080"])
        let index = try #require(relative.ferryArguments.firstIndex(of: "--token-sockets"))
        #expect(relative.ferryArguments[index + 1].hasPrefix("/") && relative.ferryArguments[index + 1].hasSuffix("/sockets"))

        // The deprecated --target-config is TokenFile.
        let legacy = try translate(["--target-config", files.tokenFile, "6080"])
        #expect(legacy.ferryArguments.contains(sequence: ["--token-file", files.tokenFile, "--route", "/=dynamic"]))

        // --host-token: the token is the Host header's name.
        let host = try translate(["--host-token", "--token-plugin", "TokenFile", "--token-source", files.tokenFile, "6080"])
        #expect(host.ferryArguments.contains(sequence: ["--token-file", files.tokenFile, "--token-from-host"]))
        let (configuration, _) = try FerryFlags.configuration(host.ferryArguments)
        #expect(configuration.auth.tokenFromHost)
    }

    @Test("token plugins Ferry does not run: an error naming the plugin and the Ferry way")
    func unsupportedTokenPlugins() throws {
        let cases: [(String, String)] = [
            ("BaseTokenAPI", "JSONTokenApi"),
            ("websockify.token_plugins.BaseTokenAPI", "JSONTokenApi"),
            ("mycompany.tokens.VaultTokens", "TokenFile, ReadOnlyTokenFile, TokenFileName, JWTTokenApi, JSONTokenApi, TokenRedis or UnixDomainSocketDirectory"),
            ("NoSuchPlugin", "TokenFile"),
        ]
        for (plugin, fix) in cases {
            let error = try #require(translationError(["--token-plugin", plugin, "--token-source", "x", "6080"]), "\(plugin)")
            #expect(error.flag == "--token-plugin" && error.value == plugin, "\(error)")
            #expect(error.description.contains("; instead, "), "\(error)")
            #expect(error.instead?.contains(fix) == true, "\(plugin): \(error)")
        }
    }

    @Test("token flags without a plugin, a plugin without a source")
    func tokenFlagErrors() throws {
        let source = try #require(translationError(["--token-source", "/etc/tokens", "6080", "localhost:5900"]))
        #expect(source.flag == "--token-source" && source.description.contains("expected --token-plugin"), "\(source)")
        let host = try #require(translationError(["--host-token", "6080", "localhost:5900"]))
        #expect(host.flag == "--host-token" && host.description.contains("expected --token-plugin"), "\(host)")
        let plugin = try #require(translationError(["--token-plugin", "TokenFile", "6080"]))
        #expect(plugin.flag == "--token-plugin" && plugin.description.contains("expected --token-source"), "\(plugin)")
    }

    // MARK: Auth plugins

    @Test("--auth-plugin ExpectOrigin: only the listed origins")
    func expectOrigin() throws {
        for plugin in ["ExpectOrigin", "websockify.auth_plugins.ExpectOrigin"] {
            let translation = try translate(["--auth-plugin", plugin, "--auth-source", "https://a.example https://b.example", "6080", "localhost:5900"])
            #expect(
                translation.ferryArguments.contains(sequence: ["--allow-origin", "https://a.example", "--allow-origin", "https://b.example", "--only-listed-origins"]),
                "\(translation.ferryArguments)"
            )
            let (configuration, _) = try FerryFlags.configuration(translation.ferryArguments)
            #expect(configuration.originPolicy.onlyListed)
        }
        let empty = try #require(translationError(["--auth-plugin", "ExpectOrigin", "6080", "localhost:5900"]))
        #expect(empty.flag == "--auth-source" && empty.description.contains("expected"), "\(empty)")
        let orphan = try #require(translationError(["--auth-source", "https://a.example", "6080", "localhost:5900"]))
        #expect(orphan.flag == "--auth-source" && orphan.description.contains("expected --auth-plugin"), "\(orphan)")
    }

    @Test("--auth-plugin ClientCertCNAuth: client-cn route options, and only with client certificates")
    func clientCertCNAuth() throws {
        let existing: Set<String> = ["/c.pem", "/ca.pem"]
        let translation = try translate(
            ["--cert", "/c.pem", "--verify-client", "--cafile", "/ca.pem", "--auth-plugin", "ClientCertCNAuth", "--auth-source", "alice bob", "6080", "localhost:5900"],
            existing: existing
        )
        #expect(translation.ferryArguments.contains(sequence: ["--route", "/=localhost:5900,client-cn=alice,client-cn=bob"]))

        let noVerify = try #require(translationError(["--cert", "/c.pem", "--auth-plugin", "ClientCertCNAuth", "--auth-source", "alice", "6080", "localhost:5900"], existing: existing))
        #expect(noVerify.flag == "--auth-plugin" && noVerify.description.contains("expected --cert FILE --verify-client --cafile FILE"), "\(noVerify)")
        let noNames = try #require(
            translationError(["--cert", "/c.pem", "--verify-client", "--cafile", "/ca.pem", "--auth-plugin", "ClientCertCNAuth", "6080", "localhost:5900"], existing: existing)
        )
        #expect(noNames.flag == "--auth-source", "\(noNames)")

        let files = try TranslationFiles()
        let parsed = try translate(
            ["--cert", files.certificate, "--verify-client", "--cafile", files.certificate, "--auth-plugin", "ClientCertCNAuth", "--auth-source", "alice", "6080", "localhost:5900"],
            existing: files.all
        )
        let (configuration, _) = try FerryFlags.configuration(parsed.ferryArguments)
        #expect(configuration.routes.routes.first?.options.clientNames == ["alice"])
    }

    @Test("BasicHTTPAuth maps onto --basic-auth (and --web-auth onto --basic-auth-web); the password is not logged")
    func basicHTTPAuth() throws {
        let plain = try translate(["--auth-plugin", "BasicHTTPAuth", "--auth-source", "user:s3cret:x", "6080", "localhost:5900"])
        #expect(plain.ferryArguments.contains(["--basic-auth", "user:s3cret:x"]))
        #expect(!plain.ferryArguments.contains("--basic-auth-web"))
        #expect(!plain.loggableArguments.joined(separator: " ").contains("s3cret"))
        #expect(plain.loggableArguments.contains("user:***"))
        let (configuration, _) = try FerryFlags.configuration(plain.ferryArguments)
        #expect(configuration.auth.basicCredentials != nil)

        let web = try translate(["--web", "/usr/share/novnc", "--web-auth", "--auth-plugin", "BasicHTTPAuth", "--auth-source", "u:p", "6080", "localhost:5900"])
        #expect(web.ferryArguments.contains("--basic-auth-web"))

        let noPassword = try #require(translationError(["--auth-plugin", "BasicHTTPAuth", "--auth-source", "user", "6080", "localhost:5900"]))
        #expect(noPassword.flag == "--auth-source", "\(noPassword)")
        let otherPlugin = try #require(translationError(["--web", "/w", "--web-auth", "--auth-plugin", "ExpectOrigin", "--auth-source", "https://a", "6080", "localhost:5900"]))
        #expect(otherPlugin.flag == "--web-auth" && otherPlugin.instead != nil, "\(otherPlugin)")
        let noPlugin = try #require(translationError(["--web", "/w", "--web-auth", "6080", "localhost:5900"]))
        #expect(noPlugin.flag == "--web-auth", "\(noPlugin)")
    }

    @Test("auth plugins Ferry does not run: Python classes")
    func unsupportedAuthPlugins() throws {
        let custom = try #require(translationError(["--auth-plugin", "mycompany.auth.LDAP", "--auth-source", "x", "6080", "localhost:5900"]))
        #expect(custom.flag == "--auth-plugin" && custom.value == "mycompany.auth.LDAP", "\(custom)")
        #expect(custom.instead?.contains("ExpectOrigin or ClientCertCNAuth") == true, "\(custom)")
    }

    // MARK: Unsupported flags and bad command lines

    @Test("flags Ferry does not have: the flag named, and the Ferry way")
    func unsupportedFlags() throws {
        let cases: [([String], String, String)] = [
            (["--key-password", "secret"], "--key-password", "openssl pkey"),
            (["--key-password=secret"], "--key-password", "openssl pkey"),
            (["--inetd"], "--inetd", "--unix-listen"),
            (["--syslog", "/dev/log"], "--syslog", "--log-file"),
            (["--legacy-syslog"], "--legacy-syslog", "--log-file"),
        ]
        for (flags, name, fix) in cases {
            let error = try #require(translationError(flags + ["6080", "localhost:5900"]), "\(flags)")
            #expect(error.flag == name, "\(error)")
            #expect(error.description.hasPrefix(name), "\(error)")
            #expect(error.description.contains("; instead, ") && error.description.contains(fix), "\(error)")
        }
        // The password is not printed back.
        let password = try #require(translationError(["--key-password", "hunter2", "6080", "localhost:5900"]))
        #expect(!password.description.contains("hunter2"), "\(password)")
    }

    @Test("wrap mode (--) is refused, naming what to do instead")
    func wrapMode() throws {
        let error = try #require(translationError(["6080", "--", "vncserver", ":1"]))
        #expect(error.flag == "--", "\(error)")
        #expect(error.value == "vncserver :1", "\(error)")
        #expect(error.description.contains("wrap mode") && error.description.contains("; instead, "), "\(error)")
    }

    @Test("too few and too many arguments, bad ports and targets")
    func badArguments() throws {
        let none = try #require(translationError([]))
        #expect(none.flag == "arguments" && none.problem.contains("too few") && none.description.contains("expected websockify [options]"), "\(none)")
        let noTarget = try #require(translationError(["6080"]))
        #expect(noTarget.flag == "arguments" && noTarget.problem.contains("target is missing"), "\(noTarget)")
        let tooMany = try #require(translationError(["6080", "localhost:5900", "extra"]))
        #expect(tooMany.flag == "arguments" && tooMany.value == "extra" && tooMany.problem.contains("too many"), "\(tooMany)")
        let tokenTooMany = try #require(translationError(["--token-plugin", "TokenFile", "--token-source", "/t", "6080", "localhost:5900"]))
        #expect(tokenTooMany.problem.contains("too many"), "\(tokenTooMany)")

        for port in ["60x80", "65536", "127.0.0.1:http", ""] {
            let error = try #require(translationError([port, "localhost:5900"]), "\(port)")
            #expect(error.flag == "source_port" && error.description.contains("expected [source_addr:]source_port"), "\(port): \(error)")
        }
        for target in ["localhost", "localhost:vnc", "localhost:0", "localhost:70000", ":5900"] {
            let error = try #require(translationError(["6080", target]), "\(target)")
            #expect(error.flag == "target" && error.description.contains("expected target_addr:target_port"), "\(target): \(error)")
        }
    }

    @Test("option syntax errors: a switch with a value, a valued flag at the end")
    func optionSyntaxErrors() throws {
        let switchValue = try #require(translationError(["--ssl-only=yes", "6080", "localhost:5900"]))
        #expect(switchValue.flag == "--ssl-only" && switchValue.problem.contains("takes no value"), "\(switchValue)")
        let missing = try #require(translationError(["6080", "localhost:5900", "--cert"]))
        #expect(missing.flag == "--cert" && missing.problem.contains("needs a value") && missing.description.contains("expected --cert VALUE"), "\(missing)")
    }

    @Test("an unknown long option is named, not taken for a Ferry flag that swallows the port")
    func unknownLongOption() throws {
        for arguments in [["--bogus", "6080", "localhost:5900"], ["--bogus=1", "6080", "localhost:5900"]] {
            let error = try #require(translationError(arguments))
            #expect(error.flag == "--bogus" && error.problem.contains("neither websockify nor Ferry"), "\(error)")
        }
        // Ferry's own flags are passed on, with their values.
        let mixed = try translate(["--allow-origin", "https://a.example", "--tls-only", "--max-connections=5", "6080", "localhost:5900"])
        #expect(Array(mixed.ferryArguments.suffix(4)) == ["--allow-origin", "https://a.example", "--tls-only", "--max-connections=5"])
    }
}

// MARK: - Helpers

private func translate(_ arguments: [String], existing: Set<String> = []) throws(ConfigurationError) -> WebsockifyCommandLine.Translation {
    try WebsockifyCommandLine.translate(arguments) { existing.contains($0) }
}

/// The error the translation throws; records an issue if it does not throw.
private func translationError(_ arguments: [String], existing: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    do {
        let translation = try translate(arguments, existing: existing)
        Issue.record("expected an error for \(arguments), got \(translation.ferryArguments)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Real files for the translations that are also parsed (Ferry checks that they exist); removed
/// when the value goes away.
private final class TranslationFiles {
    let directory: String
    let certificate: String
    let key: String
    let tokenFile: String
    let tokenDirectory: String
    let jwtSecret: String

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-websockify-unit-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.certificate = self.directory + "/cert.pem"
        self.key = self.directory + "/key.pem"
        self.tokenFile = self.directory + "/tokens"
        self.tokenDirectory = self.directory + "/token.d"
        self.jwtSecret = self.directory + "/jwt.key"
        try FileManager.default.createDirectory(atPath: self.tokenDirectory, withIntermediateDirectories: true)
        // configuration() checks that these are readable files; their contents are read when the server starts.
        try "not read by configuration()\n".write(toFile: self.certificate, atomically: true, encoding: .utf8)
        try "not read by configuration()\n".write(toFile: self.key, atomically: true, encoding: .utf8)
        try "vm1: 127.0.0.1:5901\n".write(toFile: self.tokenFile, atomically: true, encoding: .utf8)
        try "vm2: 127.0.0.1:5902\n".write(toFile: self.tokenDirectory + "/a", atomically: true, encoding: .utf8)
        try "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA".write(toFile: self.jwtSecret, atomically: true, encoding: .utf8)
    }

    /// The files, for the translation's file-exists check.
    var all: Set<String> { [self.certificate, self.key, self.tokenFile, self.tokenDirectory, self.jwtSecret] }

    deinit {
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

extension Array where Element == String {
    /// True if `sequence` appears in order, adjacent, somewhere in the array.
    fileprivate func contains(sequence: [String]) -> Bool {
        guard !sequence.isEmpty, sequence.count <= self.count else { return sequence.isEmpty }
        return (0...(self.count - sequence.count)).contains { Array(self[$0..<($0 + sequence.count)]) == sequence }
    }
}

@Test("every flag in 'ferry --help' is known to the websockify translator, so it is passed on with or without its value")
func translatorKnowsFerryFlags() throws {
    let ferry = try #require(FerryExecutable.path, "the ferry executable is not built next to the tests (swift build)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ferry)
    process.arguments = ["--help"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let help = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    var flags: Set<String> = []
    // Option lines start with two spaces and the flag (or `-h, --help`); wrapped help text is
    // indented further.
    for line in help.split(separator: "\n") {
        let option: Substring
        if line.hasPrefix("  --") {
            option = line.dropFirst(2)
        } else if line.hasPrefix("  -h, --") {
            option = line.dropFirst("  -h, ".count)
        } else {
            continue
        }
        if let first = option.split(separator: " ").first { flags.insert(String(first)) }
    }
    #expect(flags.count > 30, "\(help)")
    #expect(flags.isSuperset(of: ["--help", "--version", "--tls-only", "--buffer-size"]), "\(flags.sorted())")
    // The translator asks FerryOptions which flags are switches and which take a value; --help and
    // --version belong to the `ferry` command, not to FerryOptions.
    for flag in flags.subtracting(["--help", "--version"]).sorted() {
        #expect(FerryOptions.kind(of: flag) != nil, "\(flag) is in 'ferry --help' but FerryOptions.kind(of:) does not know it")
    }
    #expect(FerryOptions.kind(of: "--tls-only") == .switch)
    #expect(FerryOptions.kind(of: "--buffer-size") == .valued)
    #expect(FerryOptions.kind(of: "--no-such-flag") == nil)
}
