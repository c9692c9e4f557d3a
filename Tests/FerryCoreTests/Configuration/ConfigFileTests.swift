import Foundation
import Testing

@testable import FerryCommandLine
@testable import FerryCore

/// `--config` files, `FERRY_*` variables and their order under the command line, without a relay: the
/// option table read off the flags' declarations, each shape a file may take, each mistake placed at
/// its line, and the precedence for every kind of option (one value, a list, a switch).
@Suite("Unit: configuration file and environment")
struct ConfigFileUnitTests {
    static func settings(_ yaml: String) throws(ConfigSourceError) -> [Setting] {
        try ConfigFileReader.parse(yaml, path: "ferry.yaml")
    }

    static func problem(_ yaml: String) -> ConfigSourceError? {
        do {
            _ = try Self.settings(yaml)
            return nil
        } catch {
            return error
        }
    }

    /// The configuration the three places give together (the file as `yaml`).
    static func configuration(file yaml: String?, environment: [String: String] = [:], commandLine: [String] = []) throws -> (ConfigLayers, FerryConfiguration) {
        let layers = try ConfigLayers.resolve(commandLine: commandLine + (yaml == nil ? [] : ["--config", "ferry.yaml"]), environment: environment) { (path) throws(ConfigSourceError) in
            try ConfigFileReader.parse(yaml ?? "", path: path)
        }
        let (configuration, _) = try FerryOptions.parse(layers.arguments).configuration()
        return (layers, configuration)
    }

    @Test("the option table is the command line's: every flag of --help by the same name, lists and switches known as such")
    func optionTable() throws {
        let table = OptionTable.relay
        let help = Set(DocsTests.helpFlags(FerryOptions.helpMessage(columns: 200)).map { String($0.dropFirst(2)) })
        let names = Set(table.options.map(\.name))
        #expect(names.count > 60)
        #expect(names == help.subtracting(["help", "version"]), "only in the table: \(names.subtracting(help)); only in --help: \(help.subtracting(names))")
        #expect(table.option(named: "route") == .init(name: "route", takesValue: true, repeats: true))
        #expect(table.option(named: "listen")?.repeats == true)
        #expect(table.option(named: "buffer-size") == .init(name: "buffer-size", takesValue: true, repeats: false))
        #expect(table.option(named: "tls-only") == .init(name: "tls-only", takesValue: false, repeats: false))
        #expect(table.option(named: "max-connections-per-ip")?.environmentName == "FERRY_MAX_CONNECTIONS_PER_IP")
        // Each option takes a value exactly when --help shows one (`--buffer-size <size>`, `--tls-only`).
        // (Read off one help text: asking the parser about each flag costs seconds of CPU, which starves
        // the timing-sensitive suites that run beside this one.)
        let helpText = FerryOptions.helpMessage(columns: 200)
        for option in table.options {
            let line = helpText.split(separator: "\n").first { $0.hasPrefix("  --\(option.name) ") || $0 == "  --\(option.name)" }
            let showsValue = line.map { $0.dropFirst("  --\(option.name) ".count).hasPrefix("<") } ?? false
            #expect(line != nil && showsValue == option.takesValue, "--\(option.name): \(line.map(String.init) ?? "not in --help")")
        }
        #expect(FerryOptions.kind(of: "--route") == .valued && FerryOptions.kind(of: "--tls-only") == .switch)
    }

    @Test("each shape: scalars, lists, switches, routes and listeners as mappings or as the flag's text; JSON too")
    func shapes() throws {
        let yaml = """
            # a comment
            listeners:
              - address: 127.0.0.1:6080
              - address: 127.0.0.1:6443
                proxy-protocol: true
              - 127.0.0.1:7000
            routes:
              - path: /vnc
                target: 10.0.0.5:5900
                auth: token
              - path: /app
                target: tls://app.internal:443
                client-cn: [alice, bob]
              - /ssh=127.0.0.1:22
            route: /extra=127.0.0.1:9
            buffer-size: 1MiB
            max-connections: 500
            only-listed-origins: true
            allow-origin: https://console.example.com
            """
        let settings = try Self.settings(yaml)
        let byName = Dictionary(uniqueKeysWithValues: settings.map { ($0.option.name, $0) })
        #expect(byName["listen"]?.values == ["127.0.0.1:6080", "127.0.0.1:6443,proxy-protocol", "127.0.0.1:7000"])
        #expect(byName["route"]?.values == ["/vnc=10.0.0.5:5900,auth=token", "/app=tls://app.internal:443,client-cn=alice,client-cn=bob", "/ssh=127.0.0.1:22", "/extra=127.0.0.1:9"])
        #expect(byName["route"]?.sources.first == .file(path: "ferry.yaml", line: 8, column: 5))
        #expect(byName["buffer-size"]?.values == ["1MiB"])
        #expect(byName["max-connections"]?.values == ["500"])
        #expect(byName["only-listed-origins"]?.isOn == true)
        #expect(byName["allow-origin"]?.values == ["https://console.example.com"])

        let json = #"{"listen": ["127.0.0.1:6080"], "route": ["/=127.0.0.1:5900"], "buffer-size": "512KiB", "only-listed-origins": false}"#
        let fromJSON = try Self.settings(json)
        #expect(fromJSON.map(\.option.name) == ["listen", "route", "buffer-size", "only-listed-origins"])
        #expect(fromJSON.last?.isOn == false)
        #expect(try Self.settings("").isEmpty && Self.settings("# only a comment\n").isEmpty)
    }

    @Test("each mistake names the file, line, column and key, and the fix")
    func mistakes() {
        let cases: [(String, String?)] = [
            ("listen: 127.0.0.1:6080\nbufer-size: 1MiB\n", "ferry.yaml:2:1: unknown option 'bufer-size'; did you mean 'buffer-size'?"),
            ("buffer-size: [1MiB, 2MiB]\n", "ferry.yaml:1:14: buffer-size: takes one value, not a list; expected buffer-size: VALUE"),
            ("tls-only: maybe\n", "ferry.yaml:1:11: tls-only: a switch takes true or false; expected tls-only: true"),
            ("listen: 127.0.0.1:1\nroute: /a=127.0.0.1:1\nroute: /b=127.0.0.1:2\n", "ferry.yaml:2:1: route: given more than once; expected one entry per key; a list for several values"),
            ("route: /a=127.0.0.1:1\nroutes: [/b=127.0.0.1:2]\nlisten: 127.0.0.1:1\nlisteners: [127.0.0.1:2]\n", nil),
            ("listen: [127.0.0.1:6080\n", "ferry.yaml:2:1: not valid YAML: did not find expected ',' or ']'"),
            ("- listen\n", "ferry.yaml:1:1: the file must be a mapping of option names to values; expected e.g. listen: 0.0.0.0:6080"),
            ("buffer-size:\n", "ferry.yaml:1:13: buffer-size: no value"),
            ("routes:\n  - path: /vnc\n", "ferry.yaml:2:5: routes: a route needs a path and a target; expected - path: /vnc\n    target: 127.0.0.1:5900"),
            ("listeners:\n  - address: 127.0.0.1:1\n    backlog: 5\n", "ferry.yaml:3:5: listeners: unknown listener option 'backlog'; expected address, proxy-protocol or mode"),
            ("config: other.yaml\n", "ferry.yaml:1:1: a configuration file cannot name another; expected --config on the command line (or FERRY_CONFIG)"),
            ("base: &b 127.0.0.1:1\nlisten: *b\n", "ferry.yaml:1:1: unknown option 'base'; expected a long flag of ferry --help, without its dashes"),
        ]
        for (yaml, expected) in cases {
            #expect(Self.problem(yaml)?.description == expected, "\(yaml)")
        }
    }

    @Test("FERRY_* variables: one value, several separated by spaces or newlines, switches; a misspelt name is warned about with the nearest, and ignored")
    func environment() throws {
        let (settings, none) = try EnvironmentSettings.read([
            "FERRY_ROUTE": "/vnc=127.0.0.1:5900\n/ssh=127.0.0.1:22",
            "FERRY_BUFFER_SIZE": "1MiB",
            "FERRY_TLS_ONLY": "false",
            "HOME": "/root",
            "FERRY_ARGS": "--listen 0.0.0.0:6080",  // the systemd unit's, not an option
            "FERRY_FUZZ_SECONDS": "600",
        ])
        #expect(none.isEmpty)
        let byName = Dictionary(uniqueKeysWithValues: settings.map { ($0.option.name, $0) })
        #expect(byName["route"]?.values == ["/vnc=127.0.0.1:5900", "/ssh=127.0.0.1:22"])
        #expect(byName["buffer-size"]?.values == ["1MiB"])
        #expect(byName["tls-only"]?.isOn == false)
        #expect(settings.count == 3)
        let (ignored, warnings) = try EnvironmentSettings.read(["FERRY_BUFER_SIZE": "1"])
        #expect(ignored.isEmpty)
        #expect(warnings == [ConfigSourceError(source: .environment("FERRY_BUFER_SIZE"), problem: "names no option of ferry, and is ignored; did you mean FERRY_BUFFER_SIZE?")])
        #expect(throws: ConfigSourceError(source: .environment("FERRY_TLS_ONLY"), problem: "a switch takes true or false, not 'maybe'", expected: "FERRY_TLS_ONLY=true")) {
            try EnvironmentSettings.read(["FERRY_TLS_ONLY": "maybe"])
        }
        #expect(throws: ConfigSourceError.self) { try EnvironmentSettings.read(["FERRY_ROUTE": "  "]) }
    }

    @Test("precedence for each kind of option: the command line over FERRY_* over the file, each replacing a list whole")
    func precedence() throws {
        let file = """
            listen: 127.0.0.1:6080
            routes: [/a=127.0.0.1:1, /b=127.0.0.1:2]
            buffer-size: 1MiB
            only-listed-origins: true
            allow-origin: https://console.example.com
            """
        // One value.
        #expect(try Self.configuration(file: file).1.limits.bufferSize == 1 << 20)
        #expect(try Self.configuration(file: file, environment: ["FERRY_BUFFER_SIZE": "2MiB"]).1.limits.bufferSize == 2 << 20)
        #expect(try Self.configuration(file: file, environment: ["FERRY_BUFFER_SIZE": "2MiB"], commandLine: ["--buffer-size", "3MiB"]).1.limits.bufferSize == 3 << 20)
        #expect(try Self.configuration(file: file, commandLine: ["--buffer-size=4MiB"]).1.limits.bufferSize == 4 << 20)
        // A list: replaced whole, not added to.
        #expect(try Self.configuration(file: file).1.routes.routes.map(\.path).sorted() == ["/a", "/b"])
        #expect(try Self.configuration(file: file, environment: ["FERRY_ROUTE": "/c=127.0.0.1:3"]).1.routes.routes.map(\.path) == ["/c"])
        let (layers, onTop) = try Self.configuration(file: file, environment: ["FERRY_ROUTE": "/c=127.0.0.1:3"], commandLine: ["--route", "/d=127.0.0.1:4", "--route", "/e=127.0.0.1:5"])
        #expect(onTop.routes.routes.map(\.path).sorted() == ["/d", "/e"])
        #expect(layers.effective.first { $0.option.name == "route" }?.source == .commandLine)
        // A switch: the environment can turn off what the file turns on.
        #expect(try Self.configuration(file: file).1.originPolicy.onlyListed)
        #expect(try !Self.configuration(file: file, environment: ["FERRY_ONLY_LISTED_ORIGINS": "false"]).1.originPolicy.onlyListed)
        #expect(try Self.configuration(file: nil, environment: ["FERRY_ONLY_LISTED_ORIGINS": "true", "FERRY_ALLOW_ORIGIN": "https://a.example", "FERRY_LISTEN": "127.0.0.1:1", "FERRY_ROUTE": "/=127.0.0.1:2"]).1.originPolicy.onlyListed)
        #expect(try Self.configuration(file: file, commandLine: ["--only-listed-origins"]).1.originPolicy.onlyListed)
        // FERRY_CONFIG names the file when --config does not.
        let viaVariable = try ConfigLayers.resolve(commandLine: [], environment: ["FERRY_CONFIG": "from-env.yaml"]) { (path) throws(ConfigSourceError) in
            try ConfigFileReader.parse("buffer-size: 8MiB\n", path: path)
        }
        #expect(viaVariable.configPath == "from-env.yaml")
        #expect(viaVariable.arguments == ["--buffer-size", "8MiB", "--config", "from-env.yaml"])
    }

    @Test("a value the flags' own code refuses is reported at the file line (or variable) it came from")
    func placedValueErrors() throws {
        let file = "listen: 127.0.0.1:6080\nroutes:\n  - path: /vnc\n    target: 'localhost:'\nbuffer-size: 12\n"
        let layers = try ConfigLayers.resolve(commandLine: ["--config", "ferry.yaml"], environment: [:]) { (path) throws(ConfigSourceError) in
            try ConfigFileReader.parse(file, path: path)
        }
        let error = try #require(FerryFlags.problem(layers.arguments))
        #expect(layers.placed(error).hasPrefix("ferry.yaml:3:5: --route /vnc=localhost: port is missing"), "\(layers.placed(error))")
        let sized = try ConfigLayers.resolve(commandLine: ["--config", "f.yaml"], environment: [:]) { (path) throws(ConfigSourceError) in
            try ConfigFileReader.parse("listen: 127.0.0.1:6080\nroute: /=127.0.0.1:1\nbuffer-size: 12\n", path: path)
        }
        let sizeError = try #require(FerryFlags.problem(sized.arguments))
        #expect(sized.placed(sizeError).hasPrefix("f.yaml:3:14: --buffer-size 12: "), "\(sized.placed(sizeError))")
        let fromVariable = try ConfigLayers.resolve(commandLine: ["--listen", "127.0.0.1:1", "--route", "/=127.0.0.1:2"], environment: ["FERRY_MAX_CONNECTIONS": "none"])
        let variableError = try #require(FerryFlags.problem(fromVariable.arguments))
        #expect(fromVariable.placed(variableError).hasPrefix("FERRY_MAX_CONNECTIONS: --max-connections none: "), "\(fromVariable.placed(variableError))")
        // From the command line: as before, no place in front.
        let given = try ConfigLayers.resolve(commandLine: ["--listen", "127.0.0.1:1", "--route", "/=127.0.0.1:2", "--max-connections", "none"], environment: [:])
        #expect(given.placed(try #require(FerryFlags.problem(given.arguments))).hasPrefix("--max-connections none: "))
    }

    @Test("--check shows each option with its place, and masks passwords")
    func effectiveConfiguration() throws {
        let file = "listen: 127.0.0.1:6080\nroute: /=127.0.0.1:1\nbasic-auth: alice:s3cret\ntoken-redis: redis://:r3dis@10.0.0.5:6379/0\n"
        let layers = try ConfigLayers.resolve(commandLine: ["--config", "ferry.yaml", "--buffer-size", "1MiB"], environment: ["FERRY_TLS_ONLY": "false"]) { (path) throws(ConfigSourceError) in
            try ConfigFileReader.parse(file, path: path)
        }
        let text = EffectiveConfiguration.render(layers)
        #expect(text.contains("  - 127.0.0.1:6080  # ferry.yaml:1:9"), "\(text)")
        #expect(text.contains("buffer-size: 1MiB  # command line"), "\(text)")
        #expect(text.contains("tls-only: false  # FERRY_TLS_ONLY"), "\(text)")
        #expect(text.contains("alice:****") && text.contains("redis://:***@10.0.0.5:6379/0"), "\(text)")
        #expect(!text.contains("s3cret") && !text.contains("r3dis"))
        // What --check prints reads back as a file that configures the same.
        let again = try ConfigFileReader.parse(text, path: "check.yaml")
        #expect(again.first { $0.option.name == "buffer-size" }?.values == ["1MiB"])
    }

    @Test("the reference's complete example (deploy/config/ferry.yaml, copied in docs/configuration.md) configures a relay")
    func referenceExample() throws {
        let path = Repository.root.appendingPathComponent("deploy/config/ferry.yaml").path
        let file = try String(contentsOfFile: path, encoding: .utf8)
        let page = try String(contentsOfFile: Repository.root.appendingPathComponent("docs/configuration.md").path, encoding: .utf8)
        #expect(page.contains("```yaml\n" + file + "```"), "docs/configuration.md holds the example as it is in deploy/config/ferry.yaml")
        let layers = try ConfigLayers.resolve(commandLine: ["--config", path], environment: [:])
        let (configuration, logging) = try FerryFlags.configuration(layers.arguments)
        let mqtt = try #require(configuration.routes.routes.first { $0.path == "/mqtt" })
        #expect(mqtt.targets.count == 3 && mqtt.options.balance == .leastSessions)
        #expect(configuration.routes.routes.map(\.path).sorted() == ["/console", "/irc", "/mqtt", "/vnc"])
        #expect(configuration.listeners.count == 2 && configuration.listeners[1].proxyProtocol)
        #expect(configuration.limits.reloadGrace == .minutes(10))
        #expect(logging.format == .json)
    }
}
