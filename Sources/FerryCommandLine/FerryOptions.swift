import ArgumentParser
import FerryCore

/// The relay's command line, declared once. Each topic is a group that declares its flags (their
/// names, values and `--help` text) and reads them into the configuration; `ferry` shows the groups
/// under their titles, the websockify translator asks this type which flags take a value, and a test
/// checks docs/flags.md against the help they produce. Every problem names the flag, the value and
/// the fix, however the relay is started.
public struct FerryOptions: ParsableArguments {
    public init() {}

    @OptionGroup(title: "Listening and routes") var listening: ListeningFlags
    @OptionGroup(title: "Origins and names") var origins: OriginFlags
    @OptionGroup(title: "Limits") var limits: LimitFlags
    @OptionGroup(title: "Timeouts and keepalive") var timeouts: TimeoutFlags
    @OptionGroup(title: "TLS") var tls: TLSFlags
    @OptionGroup(title: "Authentication") var authentication: AuthenticationFlags
    @OptionGroup(title: "Serving files") var web: WebFlags
    @OptionGroup(title: "Production") var production: ProductionFlags
    @OptionGroup(title: "Lifetime and recording") var lifetime: LifetimeFlags
    @OptionGroup(title: "Logging") public var logging: LoggingFlags
    @OptionGroup(title: "Configuration file") public var configFile: ConfigFileFlags

    @Argument(help: ArgumentHelp("websockify style: [ADDR:]PORT TARGET, where TARGET is HOST:PORT or unix:/path.", valueName: "listen-and-target"))
    var positional: [String] = []

    /// `--access-log`: where session-end lines also go.
    public var accessLog: String? { self.production.accessLog }

    /// The validated configuration, or the first problem found.
    public func configuration() throws(ConfigurationError) -> (FerryConfiguration, LoggingOptions) {
        let (listeners, routes) = try self.listening.listenersAndRoutes(positional: self.positional)
        var limits = Limits()
        try self.limits.apply(to: &limits)
        try self.timeouts.apply(to: &limits)
        try self.production.applyDrain(to: &limits)
        let originPolicy = try self.origins.originPolicy()
        let backendTLS = try self.tls.backendTLS()
        let configuration = try FerryConfiguration(
            listeners: listeners,
            routes: routes,
            originPolicy: originPolicy,
            limits: limits,
            tls: try self.tls.listenerTLS(),
            backendTLS: backendTLS,
            auth: try self.authentication.authOptions(web: self.web.web),
            web: try self.web.webOptions(),
            trustedProxies: try self.production.trustedProxies(),
            trustsUnixSocketPeers: self.production.trustsUnixSocketPeers,
            adminListen: try self.production.adminListenAddress(),
            adminToken: try self.production.adminTokenSecret(),
            recordPrefix: try self.lifetime.recordPrefix(),
            lifetime: try self.lifetime.serverLifetime()
        )
        return (configuration, try self.logging.loggingOptions())
    }

    /// What a Ferry flag is.
    public enum FlagKind: Sendable {
        /// Given alone (`--tls-only`).
        case `switch`
        /// Followed by a value (`--buffer-size 1MiB`).
        case valued
    }

    /// What `flag` is, as ArgumentParser parses these declarations: a flag that parses alone is a
    /// switch, one that parses with a value takes one; nil if Ferry has no such flag. The websockify
    /// translator asks this instead of keeping its own lists of Ferry's flags.
    public static func kind(of flag: String) -> FlagKind? {
        guard flag.hasPrefix("--") else { return nil }
        if (try? Self.parse([flag])) != nil { return .switch }
        if (try? Self.parse([flag, "1"])) != nil { return .valued }
        return nil
    }
}
