import ArgumentParser
import FerryCore

/// Where Ferry listens and where each path goes. Shown under "LISTENING AND ROUTES" in `ferry --help`.
struct ListeningFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Address to accept connections on, ADDR:PORT (IPv6 in brackets) or unix:/path[,mode=0600] (a Unix socket, mode 0600 unless given); add ,proxy-protocol behind a load balancer that sends PROXY headers. Repeatable.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("PATH=TARGET[,OPTION...]: TARGET is HOST:PORT, tls://HOST:PORT, unix:/path or dynamic (from the token); options auth=token, client-cn=NAME, tls-verify=false. A path matches itself and what lies below it; the longest match wins. Repeatable.", valueName: "path=target"))
    var route: [String] = []

    func apply(to options: inout CommandLineOptions) {
        options.listen = self.listen
        options.route = self.route
    }
}
