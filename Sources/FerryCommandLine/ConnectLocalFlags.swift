import ArgumentParser
import FerryCore

/// Where `ferry connect` takes local connections from. Shown under "Local end".
public struct ConnectLocalFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Accept local connections on ADDR:PORT or unix:/path[,mode=0600], one WebSocket session each. Repeatable. Without it, standard input and output carry one session.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("With --listen: sessions open at once; more local connections are closed at accept. (default: 1000)", valueName: "n"))
    var maxConnections: String?

    func listeners() throws(ConfigurationError) -> [ListenAddress] {
        try self.listen.map { (text) throws(ConfigurationError) in try ListenAddress.parse(text) }
    }

    func sessionLimit() throws(ConfigurationError) -> Int {
        if let given = self.maxConnections, self.listen.isEmpty {
            throw ConfigurationError(flag: "--max-connections", value: given, problem: "applies only with --listen", expected: "--listen ADDR:PORT --max-connections \(given)")
        }
        return try FlagValue.count("--max-connections", self.maxConnections, default: 1000, minimum: 1)
    }
}
