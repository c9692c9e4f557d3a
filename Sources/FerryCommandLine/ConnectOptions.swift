import ArgumentParser
import FerryCore

/// `ferry connect`'s command line, declared once, as the relay's is: each topic is a group that
/// declares its flags and reads them into ``ConnectConfiguration``; every problem names the flag,
/// the value and the fix.
public struct ConnectOptions: ParsableArguments {
    public init() {}

    @Argument(help: ArgumentHelp("The relay's route: ws://HOST[:PORT]/PATH[?QUERY] or wss://…", valueName: "url"))
    var url: String

    @OptionGroup(title: "Local end") var local: ConnectLocalFlags
    @OptionGroup(title: "Credentials and headers") var credentials: ConnectCredentialFlags
    @OptionGroup(title: "TLS") var tls: ConnectTLSFlags
    @OptionGroup(title: "Proxy") var proxy: ConnectProxyFlags
    @OptionGroup(title: "Timeouts, keepalive and buffers") var session: ConnectSessionFlags
    @OptionGroup(title: "Logging") public var logging: LoggingFlags

    /// The validated configuration, or the first problem found.
    /// - Parameter environment: the process's, for the proxy variables (the front passes it).
    public func configuration(environment: [String: String] = [:]) throws(ConfigurationError) -> (ConnectConfiguration, LoggingOptions) {
        var configuration = ConnectConfiguration(
            url: try WebSocketURL.parse(self.url),
            request: try self.credentials.requestOptions(),
            tls: try self.tls.tlsOptions(),
            listeners: try self.local.listeners()
        )
        configuration.proxy = try self.proxy.proxy(for: configuration.url, environment: environment)
        configuration.maxConnections = try self.local.sessionLimit()
        try self.session.apply(to: &configuration)
        return (configuration, try self.logging.loggingOptions())
    }
}
