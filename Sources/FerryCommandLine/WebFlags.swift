import ArgumentParser
import FerryCore

/// Plain HTTP requests served from a folder (a browser client such as noVNC). Shown under "SERVING FILES" in `ferry --help`.
public struct WebFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Serve files from this folder for plain GET/HEAD requests (a browser client such as noVNC).", valueName: "dir"))
    var web: String?

    @Option(help: ArgumentHelp("Security headers on served HTML (nosniff, a Content-Security-Policy whose connect-src 'self' allows WebSockets to the page's own host): default or none.", valueName: "setting"))
    var webHeaders: String?

    /// The `--web` folder and its headers; nil without `--web`.
    func webOptions() throws(ConfigurationError) -> WebOptions? {
        var securityHeaders = true
        if let text = self.webHeaders {
            guard text == "none" || text == "default" else {
                throw ConfigurationError(flag: "--web-headers", value: text, problem: "unknown setting", expected: "default or none")
            }
            securityHeaders = text == "default"
        }
        guard let root = self.web else {
            if self.webHeaders != nil {
                throw ConfigurationError(flag: "--web-headers", value: self.webHeaders ?? "", problem: "needs a folder", expected: "--web DIR")
            }
            return nil
        }
        return WebOptions(root: root, securityHeaders: securityHeaders)
    }
}
