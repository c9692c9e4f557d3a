import ArgumentParser
import FerryCore

/// Whether `ferry connect` reaches the relay through an HTTP proxy. Shown under "Proxy". The
/// environment is passed in by the front, so the rules (``ProxySelection``) are tested without it.
public struct ConnectProxyFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("HTTP proxy to tunnel through with CONNECT, http://[USER:PASSWORD@]HOST:PORT (user and password percent-encoded). Overrides the environment. (default: HTTPS_PROXY for wss://, HTTP_PROXY for ws://, unless NO_PROXY names the host)", valueName: "url"))
    var proxy: String?

    @Flag(help: "Connect directly: ignore HTTPS_PROXY, HTTP_PROXY and their lower-case forms.")
    var noProxy = false

    /// The proxy for `url`, and why it was chosen (`--proxy` or the variable's name); nil: direct.
    func proxy(for url: WebSocketURL, environment: [String: String]) throws(ConfigurationError) -> ConnectProxy? {
        try ProxySelection.proxy(for: url, flag: self.proxy, noProxy: self.noProxy, environment: environment)
    }
}
