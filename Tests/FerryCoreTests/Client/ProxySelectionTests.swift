import Testing

@testable import FerryCore

extension ClientTests {
    /// `--proxy` URLs and the choice between `--proxy`, `--no-proxy` and the environment: pure
    /// functions, no sockets.
    @Suite("Proxy settings (parsing, environment)")
    struct ProxySelectionTests {
        static let wss = WebSocketURL(secure: true, host: "relay.example.com", port: 443, path: "/ssh")
        static let ws = WebSocketURL(secure: false, host: "relay.example.com", port: 80, path: "/ssh")

        static func choose(_ environment: [String: String], url: WebSocketURL = Self.wss, flag: String? = nil, noProxy: Bool = false) throws -> ConnectProxy? {
            try ProxySelection.proxy(for: url, flag: flag, noProxy: noProxy, environment: environment)
        }

        // MARK: URLs

        @Test("http://host:port, with and without percent-encoded credentials; no scheme means http")
        func parsesURLs() throws {
            #expect(try ConnectProxy.parse("http://proxy.example.com:3128") == ConnectProxy(host: "proxy.example.com", port: 3128))
            #expect(try ConnectProxy.parse("HTTP://proxy:3128/") == ConnectProxy(host: "proxy", port: 3128))
            #expect(try ConnectProxy.parse("proxy:8080", source: "HTTPS_PROXY") == ConnectProxy(host: "proxy", port: 8080, source: "HTTPS_PROXY"))
            #expect(try ConnectProxy.parse("http://proxy") == ConnectProxy(host: "proxy", port: 80), "the scheme's port")
            #expect(try ConnectProxy.parse("http://[::1]:3128") == ConnectProxy(host: "::1", port: 3128))
            let withCredentials = try ConnectProxy.parse("http://al%40ice:p%3Ass@w%2Frd@10.0.0.1:3128")
            #expect(withCredentials.credentials == ConnectProxy.Credentials(user: "al@ice", password: "p:ss@w/rd"))
            #expect(withCredentials.address == "10.0.0.1:3128")
            #expect(withCredentials.authorization == "Basic YWxAaWNlOnA6c3NAdy9yZA==")
            #expect(try ConnectProxy.parse("http://alice@proxy:3128").credentials == ConnectProxy.Credentials(user: "alice", password: ""))
        }

        @Test("the description and errors never show the password")
        func redacted() throws {
            let proxy = try ConnectProxy.parse("http://alice:s3cret@proxy:3128")
            #expect("\(proxy)" == "http://proxy:3128")
            do {
                _ = try ConnectProxy.parse("https://alice:s3cret@proxy:3128")
                Issue.record("an https:// proxy is refused")
            } catch {
                #expect(!"\(error)".contains("s3cret"), "\(error)")
                #expect(!"\(error)".contains("alice"), "\(error)")
            }
        }

        @Test("https://, socks5:// and malformed proxy URLs are refused, naming the setting and the fix")
        func refusesOthers() {
            #expect(throws: ConfigurationError(flag: "--proxy", value: "https://proxy:3128", problem: "is an https:// proxy, and TLS to the proxy is not supported", expected: ConnectProxy.expected)) {
                try ConnectProxy.parse("https://proxy:3128")
            }
            #expect(throws: ConfigurationError(flag: "ALL_PROXY", value: "socks5://proxy:1080", problem: "is a socks5:// proxy; only HTTP proxies (CONNECT) are supported", expected: ConnectProxy.expected)) {
                try ConnectProxy.parse("socks5://proxy:1080", source: "ALL_PROXY")
            }
            for bad in ["http://", "http://proxy:0", "http://proxy:99999", "http://proxy:port", "http://proxy:3128/path", "http://::1:3128", "http://[::1", "http://:pw@proxy:3128"] {
                #expect(throws: ConfigurationError.self, "\(bad)") { try ConnectProxy.parse(bad) }
            }
            let error = ConfigurationError(flag: "--proxy", value: "https://proxy:3128", problem: "is an https:// proxy, and TLS to the proxy is not supported", expected: ConnectProxy.expected)
            #expect(error.description == "--proxy https://proxy:3128: is an https:// proxy, and TLS to the proxy is not supported; expected http://[USER:PASSWORD@]HOST:PORT, e.g. http://proxy.example.com:3128")
        }

        // MARK: Which setting applies

        @Test("wss:// reads HTTPS_PROXY, ws:// reads HTTP_PROXY; the lower-case name wins; empty is unset")
        func variables() throws {
            let both = ["HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "HTTP_PROXY": "http://plain:3"]
            #expect(try Self.choose(both) == ConnectProxy(host: "lower", port: 2, source: "https_proxy"))
            #expect(try Self.choose(["HTTPS_PROXY": "http://upper:1"]) == ConnectProxy(host: "upper", port: 1, source: "HTTPS_PROXY"))
            #expect(try Self.choose(["HTTPS_PROXY": "http://upper:1", "https_proxy": ""]) == ConnectProxy(host: "upper", port: 1, source: "HTTPS_PROXY"))
            #expect(try Self.choose(both, url: Self.ws) == ConnectProxy(host: "plain", port: 3, source: "HTTP_PROXY"))
            #expect(try Self.choose(["http_proxy": "http://a:4", "HTTP_PROXY": "http://b:5"], url: Self.ws) == ConnectProxy(host: "a", port: 4, source: "http_proxy"))
            #expect(try Self.choose(["HTTP_PROXY": "http://plain:3"]) == nil, "a wss:// URL does not use HTTP_PROXY")
            #expect(try Self.choose(["ALL_PROXY": "http://all:6", "all_proxy": "socks5://s:1080"]) == nil, "ALL_PROXY is not read")
            #expect(try Self.choose([:]) == nil)
        }

        @Test("--proxy overrides the environment and NO_PROXY; --no-proxy ignores the environment; both together is an error")
        func flags() throws {
            let environment = ["HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"]
            #expect(try Self.choose(environment, flag: "http://flag:2") == ConnectProxy(host: "flag", port: 2, source: "--proxy"))
            #expect(try Self.choose(["HTTPS_PROXY": "http://env:1"], noProxy: true) == nil)
            #expect(throws: ConfigurationError(flag: "--no-proxy", value: "", problem: "given with --proxy", expected: "one of --proxy URL and --no-proxy")) {
                try Self.choose([:], flag: "http://flag:2", noProxy: true)
            }
            let named = ConfigurationError(flag: "https_proxy", value: "https://env:1", problem: "is an https:// proxy, and TLS to the proxy is not supported", expected: ConnectProxy.expected)
            #expect(throws: named, "a bad variable is a start-up error naming it") {
                try Self.choose(["https_proxy": "https://env:1"])
            }
        }

        @Test("NO_PROXY: *, names and domain suffixes, ports, IP addresses and CIDR ranges; lower-case first")
        func noProxy() throws {
            func bypassed(_ host: String, _ list: String) -> Bool {
                ProxySelection.bypasses(host: host, port: 443, noProxy: list)
            }
            func bypassed(_ host: String, _ port: Int, _ list: String) -> Bool {
                ProxySelection.bypasses(host: host, port: port, noProxy: list)
            }
            #expect(bypassed("anything", "*"))
            #expect(bypassed("relay.example.com", "example.com"))
            #expect(bypassed("relay.example.com", ".example.com"))
            #expect(bypassed("example.com", ".example.com"))
            #expect(bypassed("RELAY.Example.com.", "example.COM"))
            #expect(!bypassed("relay.notexample.com", "example.com"))
            #expect(!bypassed("example.com.org", "example.com"))
            #expect(bypassed("relay.example.com", "other.test, relay.example.com ,x"))
            #expect(bypassed("relay.example.com", 443, "relay.example.com:443"))
            #expect(!bypassed("relay.example.com", 8443, "relay.example.com:443"))
            #expect(bypassed("127.0.0.1", "127.0.0.1"))
            #expect(!bypassed("127.0.0.2", "127.0.0.1"))
            #expect(bypassed("127.0.0.2", "127.0.0.0/8"))
            #expect(!bypassed("10.1.2.3", "127.0.0.0/8"))
            #expect(bypassed("10.1.2.3", 443, "10.1.2.3:443"))
            #expect(bypassed("::1", "::1"))
            #expect(bypassed("::1", "[0:0:0:0:0:0:0:1]"))
            #expect(bypassed("::1", 443, "[::1]:443"))
            #expect(bypassed("fd00::5", "fd00::/8"))
            #expect(!bypassed("2001:db8::1", "fd00::/8"))
            #expect(!bypassed("127.0.0.1", "localhost"), "names are not resolved")
            #expect(!bypassed("localhost", ""), "loopback is not special")
            #expect(!bypassed("127.0.0.1", "10.0.0.0/99"))

            let loopback = WebSocketURL(secure: true, host: "127.0.0.1", port: 8443)
            #expect(try Self.choose(["HTTPS_PROXY": "http://p:1"], url: loopback) != nil, "like curl, loopback goes through the proxy")
            #expect(try Self.choose(["HTTPS_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"], url: loopback) == nil)
            #expect(try Self.choose(["HTTPS_PROXY": "http://p:1", "no_proxy": "other", "NO_PROXY": "127.0.0.1"], url: loopback) != nil, "lower-case wins")
        }

        // MARK: Messages

        @Test("proxy failures: exit status 3 and messages that name the proxy and the fix")
        func messages() {
            let unreachable = ConnectFailure.proxyUnreachable(proxy: "127.0.0.1:8888", reason: "connection refused")
            #expect(unreachable.description == "could not connect to proxy 127.0.0.1:8888: connection refused")
            let missing = ConnectFailure.proxyCredentials(proxy: "127.0.0.1:8888", status: 407, given: false, source: "--proxy")
            #expect(missing.description == "the proxy 127.0.0.1:8888 requires credentials (407); give them in --proxy http://user:password@127.0.0.1:8888")
            let fromEnvironment = ConnectFailure.proxyCredentials(proxy: "p:1", status: 407, given: false, source: "HTTPS_PROXY")
            #expect(fromEnvironment.description.hasSuffix("give them in HTTPS_PROXY=http://user:password@p:1"))
            let wrong = ConnectFailure.proxyCredentials(proxy: "p:1", status: 401, given: true, source: "--proxy")
            #expect(wrong.description.hasPrefix("the proxy p:1 did not accept the credentials in --proxy (401)"))
            let refused = ConnectFailure.proxyRefused(proxy: "p:1", target: "relay:443", status: 502, reason: "Bad Gateway")
            #expect(refused.description == "the proxy p:1 refused CONNECT to relay:443: 502 Bad Gateway")
            for failure in [unreachable, missing, wrong, refused, .proxyBroken(proxy: "p:1", reason: "x")] {
                #expect(failure.exitStatus == .couldNotConnect)
            }
        }
    }
}
