import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads websockify's command line and writes the Ferry command line that does the same, so existing
/// Dockerfiles, units and scripts that start `websockify …` work unchanged with Ferry.
///
/// The translation is argument to argument: what comes out is parsed by Ferry's own front exactly as
/// if the user had typed it (and is logged, so the Ferry way of saying it is one copy away). Each
/// websockify flag either maps onto Ferry flags, is accepted with a warning when it only changes
/// something Ferry does anyway (`--libserver`, `--traffic`, `-D`), or stops the start with a message
/// naming the flag and the Ferry way to get the same. Ferry's own flags (`--allow-origin`,
/// `--max-connections`, …) may be added to a websockify command line and are passed on as given.
public enum WebsockifyCommandLine {
    public struct Translation: Sendable, Equatable {
        /// The arguments for Ferry's own front (without the program name).
        public var ferryArguments: [String] = []
        /// Accepted-but-ignored flags and changed meanings, one line each.
        public var warnings: [String] = []
        /// `-D`/`--daemon` was given: start in the background once listening.
        public var daemon = false
        /// `-h`/`--help` was given: print ``usage`` instead of starting.
        public var help = false

        /// ``ferryArguments`` with passwords replaced, for the log.
        public var loggableArguments: [String] {
            var shown = self.ferryArguments
            for index in shown.indices.dropFirst() where shown[index - 1] == "--basic-auth" && !shown[index].hasPrefix("@") {
                shown[index] = String(shown[index].prefix { $0 != ":" }) + ":***"
            }
            for index in shown.indices.dropFirst() where shown[index - 1] == "--token-redis" {
                shown[index] = RedisEndpoint.redact(shown[index])
            }
            return shown
        }
    }

    public static func translate(_ arguments: [String], fileExists: (String) -> Bool) throws(ConfigurationError) -> Translation {
        var given = try WebsockifyArguments(arguments)
        var translation = Translation()
        if given.names.contains("--help") {
            translation.help = true
            return translation
        }
        var out = Output()
        Self.logging(given, &out, &translation)
        try Self.listen(&given, &out)
        let target = try Self.relayTarget(&given, &out)
        let hasCertificate = try Self.tls(given, &out, fileExists: fileExists)
        let routeOptions = try Self.authPlugins(given, &out, hasCertificate: hasCertificate)
        out.arguments += ["--route", (["/=" + target] + routeOptions).joined(separator: ",")]
        if target == "dynamic" { out.arguments += ["--allow-target", "any"] }
        try Self.filesAndLifetime(given, &out)
        translation.ferryArguments = out.arguments + given.passed
        translation.warnings = out.warnings
        return translation
    }

    /// The Ferry arguments written so far, and the warnings for the user.
    struct Output {
        var arguments: [String] = []
        var warnings: [String] = []
    }

    /// `-v`, `--log-file`, `-D` and the flags Ferry ignores with a warning.
    private static func logging(_ given: WebsockifyArguments, _ out: inout Output, _ translation: inout Translation) {
        if given.names.contains("--verbose") { out.arguments += ["--log-level", "debug"] }
        if let path = given.options["--log-file"] { out.arguments += ["--log-file", path] }
        if given.names.contains("--daemon") {
            translation.daemon = true
            out.warnings.append("-D/--daemon: Ferry goes to the background once it listens, and then logs only to --log-file; a supervisor (systemd, Docker) is the better way to run it")
        }
        if given.names.contains("--libserver") { out.warnings.append("--libserver: ignored; Ferry has one server engine") }
        if given.names.contains("--wrap-mode") { out.warnings.append("--wrap-mode: ignored; Ferry does not wrap programs") }
        if given.names.contains("--traffic") { out.warnings.append("--traffic: ignored; Ferry never logs traffic (use --record FILE to record sessions)") }
    }

    /// `[source_addr:]source_port`, or `--unix-listen` with its mode.
    private static func listen(_ given: inout WebsockifyArguments, _ out: inout Output) throws(ConfigurationError) {
        if let path = given.options["--unix-listen"] {
            var listen = "unix:" + Self.absolute(path)
            if let mode = given.options["--unix-listen-mode"] {
                guard !mode.isEmpty, mode.count <= 4, mode.allSatisfy({ ("0"..."7").contains($0) }) else {
                    throw ConfigurationError(flag: "--unix-listen-mode", value: mode, problem: "not an octal mode", expected: "e.g. 600 or 0660")
                }
                listen += ",mode=" + mode
            }
            out.arguments += ["--listen", listen]
        } else {
            if given.options["--unix-listen-mode"] != nil {
                out.warnings.append("--unix-listen-mode: ignored without --unix-listen")
            }
            guard !given.positional.isEmpty else {
                throw ConfigurationError(flag: "arguments", value: "", problem: "too few arguments: the listen port is missing", expected: "websockify [options] [source_addr:]source_port target_addr:target_port")
            }
            out.arguments += ["--listen", try Self.listenAddress(given.positional.removeFirst(), preferIPv6: given.names.contains("--prefer-ipv6"))]
        }
    }

    /// Where to relay to: a token plugin (`dynamic`), `--unix-target`, or `target_addr:target_port`
    /// (`tls://` with `--ssl-target`); nothing may be left over.
    private static func relayTarget(_ given: inout WebsockifyArguments, _ out: inout Output) throws(ConfigurationError) -> String {
        let pluginName = given.options["--token-plugin"] ?? (given.options["--target-config"] != nil ? "TokenFile" : nil)
        let pluginSource = given.options["--token-source"] ?? given.options["--target-config"]
        if given.options["--token-source"] != nil && given.options["--token-plugin"] == nil {
            throw ConfigurationError(flag: "--token-source", value: given.options["--token-source"]!, problem: "needs a token plugin", expected: "--token-plugin TokenFile (or another plugin) with it")
        }
        if given.names.contains("--host-token") && pluginName == nil {
            throw ConfigurationError(flag: "--host-token", value: "", problem: "needs a token plugin", expected: "--token-plugin CLASS --token-source ARG")
        }
        let target: String
        if let pluginName {
            guard let pluginSource else {
                throw ConfigurationError(flag: "--token-plugin", value: pluginName, problem: "needs --token-source", expected: "--token-source PATH")
            }
            if given.names.contains("--ssl-target") {
                throw ConfigurationError(flag: "--ssl-target", value: "", problem: "cannot apply to targets from tokens", instead: "write tls://HOST:PORT as the target in your token file, or tls:// route targets with Ferry's --route")
            }
            out.arguments += try Self.tokenPlugin(pluginName, source: pluginSource)
            if given.names.contains("--host-token") { out.arguments.append("--token-from-host") }
            target = "dynamic"
        } else if let path = given.options["--unix-target"] {
            if given.names.contains("--ssl-target") {
                throw ConfigurationError(flag: "--ssl-target", value: "", problem: "does not apply to --unix-target", expected: "a TCP target HOST:PORT with --ssl-target")
            }
            target = "unix:" + Self.absolute(path)
        } else {
            guard !given.positional.isEmpty else {
                throw ConfigurationError(flag: "arguments", value: "", problem: "too few arguments: the target is missing", expected: "websockify [options] [source_addr:]source_port target_addr:target_port")
            }
            let hostPort = try Self.target(given.positional.removeFirst())
            target = given.names.contains("--ssl-target") ? "tls://" + hostPort : hostPort
        }
        guard given.positional.isEmpty else {
            throw ConfigurationError(flag: "arguments", value: given.positional.joined(separator: " "), problem: "too many arguments", expected: "websockify [options] [source_addr:]source_port target_addr:target_port")
        }
        return target
    }

    /// TLS towards clients: websockify serves wss:// when the certificate file (default ./self.pem)
    /// exists. Returns whether it does.
    private static func tls(_ given: WebsockifyArguments, _ out: inout Output, fileExists: (String) -> Bool) throws(ConfigurationError) -> Bool {
        let certificate = given.options["--cert"] ?? "self.pem"
        let key = given.options["--key"] ?? certificate
        let hasCertificate = fileExists(certificate)
        if hasCertificate {
            guard fileExists(key) else {
                throw ConfigurationError(flag: "--key", value: key, problem: "file not found", expected: "the private key of --cert, or leave --key out when the key is in the --cert file")
            }
            out.arguments += ["--tls-cert", certificate, "--tls-key", key]
            if given.names.contains("--ssl-only") { out.arguments.append("--tls-only") }
            switch given.options["--ssl-version"] {
            case nil, "default": break
            case "tlsv1_1":
                out.warnings.append("--ssl-version tlsv1_1: Ferry accepts TLS 1.2 and newer only")
            case "tlsv1_2": out.arguments += ["--tls-min-version", "1.2"]
            case "tlsv1_3": out.arguments += ["--tls-min-version", "1.3"]
            case let other?:
                throw ConfigurationError(flag: "--ssl-version", value: other, problem: "unknown version", expected: "default, tlsv1_1, tlsv1_2 or tlsv1_3")
            }
            if let ciphers = given.options["--ssl-ciphers"] { out.arguments += ["--tls-ciphers", ciphers] }
            if given.names.contains("--verify-client") {
                guard let cafile = given.options["--cafile"] else {
                    throw ConfigurationError(flag: "--verify-client", value: "", problem: "without --cafile websockify trusts every public CA for client certificates; Ferry does not", instead: "give --cafile FILE, the CA that signs your client certificates")
                }
                out.arguments += ["--tls-client-ca", cafile, "--tls-client-auth", "require"]
            } else if given.options["--cafile"] != nil {
                out.warnings.append("--cafile: ignored without --verify-client (as in websockify)")
            }
        } else {
            if given.names.contains("--ssl-only") {
                throw ConfigurationError(flag: "--ssl-only", value: certificate, problem: "the certificate file is not found", expected: "--cert FILE (a PEM file with the certificate, and the key unless --key is given)")
            }
            if given.options["--cert"] != nil {
                out.warnings.append("--cert \(certificate): file not found; serving ws:// only (websockify would refuse each wss:// connection)")
            }
            for flag in ["--verify-client", "--cafile", "--ssl-version", "--ssl-ciphers", "--key"] where given.names.contains(flag) {
                out.warnings.append("\(flag): ignored, no certificate to serve wss:// with")
            }
        }

        return hasCertificate
    }

    /// `--auth-plugin`, `--auth-source` and `--web-auth`; returns route options (`client-cn=`).
    private static func authPlugins(_ given: WebsockifyArguments, _ out: inout Output, hasCertificate: Bool) throws(ConfigurationError) -> [String] {
        var routeOptions: [String] = []
        if given.names.contains("--web-auth") {
            guard let plugin = given.options["--auth-plugin"] else {
                throw ConfigurationError(flag: "--web-auth", value: "", problem: "needs an auth plugin", expected: "--auth-plugin BasicHTTPAuth --auth-source USER:PASSWORD")
            }
            guard given.options["--web"] != nil else {
                throw ConfigurationError(flag: "--web-auth", value: "", problem: "there are no files to protect", expected: "--web DIR")
            }
            guard Self.shortName(plugin, module: "websockify.auth_plugins.") == "BasicHTTPAuth" else {
                throw ConfigurationError(flag: "--web-auth", value: "", problem: "Ferry protects --web files with BasicHTTPAuth only", instead: "use --auth-plugin BasicHTTPAuth, or require client certificates (--verify-client --cafile FILE), which cover the files too")
            }
        }
        if given.options["--auth-source"] != nil && given.options["--auth-plugin"] == nil {
            throw ConfigurationError(flag: "--auth-source", value: given.options["--auth-source"]!, problem: "needs an auth plugin", expected: "--auth-plugin ExpectOrigin or ClientCertCNAuth with it")
        }
        if let plugin = given.options["--auth-plugin"] {
            let source = given.options["--auth-source"] ?? ""
            let words = source.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
            switch Self.shortName(plugin, module: "websockify.auth_plugins.") {
            case "ExpectOrigin":
                guard !words.isEmpty else {
                    throw ConfigurationError(flag: "--auth-source", value: source, problem: "ExpectOrigin with no origin refuses every client", expected: "--auth-source 'https://example.com https://other.example'")
                }
                for origin in words { out.arguments += ["--allow-origin", origin] }
                out.arguments.append("--only-listed-origins")
            case "ClientCertCNAuth":
                guard given.names.contains("--verify-client"), hasCertificate else {
                    throw ConfigurationError(flag: "--auth-plugin", value: plugin, problem: "client names need client certificates", expected: "--cert FILE --verify-client --cafile FILE")
                }
                guard !words.isEmpty else {
                    throw ConfigurationError(flag: "--auth-source", value: source, problem: "ClientCertCNAuth with no name refuses every client", expected: "--auth-source 'alice bob'")
                }
                for name in words {
                    guard !name.contains(",") else {
                        throw ConfigurationError(flag: "--auth-source", value: name, problem: "a name with a comma cannot be matched", expected: "common names without commas")
                    }
                    routeOptions.append("client-cn=" + name)
                }
            case "BasicHTTPAuth":
                guard source.contains(":") else {
                    throw ConfigurationError(flag: "--auth-source", value: "", problem: "BasicHTTPAuth needs USER:PASSWORD", expected: "--auth-source USER:PASSWORD")
                }
                out.arguments += ["--basic-auth", source]
                if given.names.contains("--web-auth") { out.arguments.append("--basic-auth-web") }
            default:
                throw ConfigurationError(flag: "--auth-plugin", value: plugin, problem: "Python plugins cannot run in Ferry", instead: "use ExpectOrigin or ClientCertCNAuth, or tokens with --token-plugin")
            }
        }

        return routeOptions
    }

    /// Web files, keepalive, lifetime and recording.
    private static func filesAndLifetime(_ given: WebsockifyArguments, _ out: inout Output) throws(ConfigurationError) {
        if let folder = given.options["--web"] { out.arguments += ["--web", folder] }
        if let seconds = try Self.seconds("--heartbeat", given.options["--heartbeat"]), seconds > 0 { out.arguments += ["--ping-interval", "\(seconds)s"] }
        if let seconds = try Self.seconds("--idle-timeout", given.options["--idle-timeout"]), seconds > 0 {
            out.arguments += ["--exit-when-idle", "\(seconds)s"]
            out.warnings.append("--idle-timeout \(seconds): the server exits after \(seconds) s without sessions, as in websockify (Ferry's --exit-when-idle); sessions themselves have no idle limit")
        }
        if let seconds = try Self.seconds("--timeout", given.options["--timeout"]), seconds > 0 {
            out.arguments += ["--accept-for", "\(seconds)s"]
            out.warnings.append("--timeout \(seconds): the server stops accepting after \(seconds) s and exits when its last session ends, as in websockify (Ferry's --accept-for)")
        }
        if given.names.contains("--run-once") { out.arguments.append("--run-once") }
        if let prefix = given.options["--record"] { out.arguments += ["--record", Self.absolute(prefix)] }
        // websockify never ends a quiet session; Ferry's pings still find dead clients.
        out.arguments += ["--idle-timeout", "0"]
    }
}
