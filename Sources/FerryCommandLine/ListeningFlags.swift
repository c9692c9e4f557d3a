import ArgumentParser
import FerryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where Ferry listens and where each path goes. Shown under "LISTENING AND ROUTES" in `ferry --help`.
public struct ListeningFlags: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("Address to accept connections on, ADDR:PORT (IPv6 in brackets) or unix:/path[,mode=0600] (a Unix socket, mode 0600 unless given); add ,proxy-protocol behind a load balancer that sends PROXY headers. Repeatable.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("PATH=TARGET[,OPTION...]: TARGET is HOST:PORT, tls://HOST:PORT, unix:/path or dynamic (from the token); options auth=token, client-cn=NAME, tls-verify=false. A path matches itself and what lies below it; the longest match wins. Repeatable.", valueName: "path=target"))
    var route: [String] = []

    /// The listeners and routes, with websockify's short form (`[ADDR:]PORT TARGET`) added.
    func listenersAndRoutes(positional: [String]) throws(ConfigurationError) -> ([ListenAddress], [Route]) {
        var listeners = try self.listen.map { (text) throws(ConfigurationError) in try ListenAddress.parse(text) }
        var routes = try self.route.map { (text) throws(ConfigurationError) in try Route.parse(text) }
        switch positional.count {
        case 0:
            break
        case 2:
            listeners.append(try ListenAddress.parse(positional[0], flag: "[addr:]port", allowBarePort: true))
            let target = try BackendTarget.parse(positional[1], flag: "target", context: positional[1])
            routes.append(Route(path: "/", target: target))
        default:
            throw ConfigurationError(
                flag: "arguments",
                value: positional.joined(separator: " "),
                problem: "the short form takes two arguments",
                expected: "[ADDR:]PORT TARGET, e.g. ferry 6080 localhost:5900, or --listen and --route"
            )
        }
        guard !listeners.isEmpty else {
            throw ConfigurationError(flag: "--listen", value: "", problem: "no listen address given", expected: "--listen ADDR:PORT, or the short form: ferry 6080 localhost:5900")
        }
        guard !routes.isEmpty else {
            throw ConfigurationError(flag: "--route", value: "", problem: "no route given", expected: "--route PATH=HOST:PORT, or the short form: ferry 6080 localhost:5900")
        }
        for route in routes {
            if case .unix(let path) = route.target { try Self.checkSocketPath(path, route: route) }
        }
        return (listeners, routes)
    }

    /// A Unix socket target must be a socket the relay may open, when it exists; its folder must exist.
    private static func checkSocketPath(_ path: String, route: Route) throws(ConfigurationError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw ConfigurationError(flag: "--route", value: route.description, problem: "\(path) exists but is not a socket", expected: "the path of a listening Unix socket")
            }
            guard access(path, R_OK | W_OK) == 0 else {
                throw ConfigurationError(flag: "--route", value: route.description, problem: "\(path) is not readable and writable by this user", expected: "a socket this user may connect to")
            }
            return
        }
        let folder = parentFolder(of: path)
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0, folderInfo.st_mode & S_IFMT == S_IFDIR else {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "folder \(folder) does not exist", expected: "the path of a listening Unix socket")
        }
    }
}
