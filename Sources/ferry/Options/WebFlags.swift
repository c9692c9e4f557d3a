import ArgumentParser
import FerryCore

/// Plain HTTP requests served from a folder (a browser client such as noVNC). Shown under "SERVING FILES" in `ferry --help`.
struct WebFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Serve files from this folder for plain GET/HEAD requests (a browser client such as noVNC).", valueName: "dir"))
    var web: String?

    @Option(help: ArgumentHelp("Security headers on served HTML (nosniff, a Content-Security-Policy whose connect-src 'self' allows WebSockets to the page's own host): default or none.", valueName: "setting"))
    var webHeaders: String?

    func apply(to options: inout CommandLineOptions) {
        options.web = self.web
        options.webHeaders = self.webHeaders
    }
}
