import ArgumentParser
import FerryCore

/// Which pages may connect (Origin) and the names the relay answers to (DNS rebinding). Shown under "ORIGINS AND NAMES" in `ferry --help`.
public struct OriginFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Also allow this browser Origin (SCHEME://HOST[:PORT], or * for any). Without it, only clients with no Origin or pages from the host they connect to get in, and that host must be one of the relay's names (see --server-name). Repeatable.", valueName: "origin"))
    var allowOrigin: [String] = []

    @Option(help: ArgumentHelp("A name clients reach the relay by (relay.example.com, or *.example.com for every name below it): pages served from it may connect. IP addresses, localhost, the machine's host name and the TLS certificate's names count already; any other Host is refused unless its Origin is listed with --allow-origin (DNS rebinding). Repeatable.", valueName: "name"))
    var serverName: [String] = []

    @Flag(help: "Only origins given with --allow-origin get in; clients without Origin and pages from the relay's own host are refused (websockify's ExpectOrigin).")
    var onlyListedOrigins = false

    /// The Origin rule and the relay's names, checked.
    func originPolicy() throws(ConfigurationError) -> OriginPolicy {
        let origins = try self.allowOrigin.map { (text) throws(ConfigurationError) in try OriginPolicy.validate(text) }
        if self.onlyListedOrigins && origins.isEmpty {
            throw ConfigurationError(flag: "--only-listed-origins", value: "", problem: "no origin is listed, so every browser would be refused", expected: "--allow-origin SCHEME://HOST[:PORT]")
        }
        return OriginPolicy(
            allowed: origins,
            onlyListed: self.onlyListedOrigins,
            serverNames: try self.serverName.map { (text) throws(ConfigurationError) in try OriginPolicy.validateServerName(text) }
        )
    }
}
