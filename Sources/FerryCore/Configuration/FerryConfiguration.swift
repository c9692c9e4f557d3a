import Logging
import NIOCore

/// Everything a running relay needs, validated once at start-up. Built from flags by
/// ``FerryConfiguration/parse(_:)`` or directly in code (tests, the demo).
public struct FerryConfiguration: Sendable {
    public var listeners: [ListenAddress]
    public var routes: RouteTable
    public var originPolicy: OriginPolicy
    public var limits: Limits
    /// Fixed responses for plain GET requests by exact path (the demo page); empty by default.
    public var staticPages: [String: StaticPage]
    /// TLS on the listeners; nil serves plain `ws://` only.
    public var tls: ListenerTLSOptions?
    public var backendTLS: BackendTLSOptions
    public var auth: AuthOptions
    /// Static files for plain GET/HEAD requests; nil serves none.
    public var web: WebOptions?
    /// Load balancers whose PROXY headers and X-Forwarded-For / Forwarded headers are believed.
    public var trustedProxies: [AddressBlock]
    /// `--trusted-proxy unix`: X-Forwarded-For / Forwarded headers are believed from clients of Unix-socket
    /// listeners (a proxy on the same host, e.g. nginx's `proxy_pass http://unix:…`; the socket's mode
    /// decides who may connect). Off by default: without it every such client is logged as `unix`.
    public var trustsUnixSocketPeers: Bool
    /// Where `/metrics` is served (`--admin-listen`); nil: nowhere.
    public var adminListen: ListenAddress?
    /// `--admin-token`: the secret every admin request must present as `Authorization: Bearer`.
    public var adminToken: String?
    /// `--record PREFIX`: each session's traffic is written to PREFIX.N; nil: nothing is recorded.
    public var recordPrefix: String?
    /// When the server stops by itself (websockify's `--idle-timeout`, `--timeout`, `--run-once`).
    public var lifetime: ServerLifetime

    public init(
        listeners: [ListenAddress],
        routes: [Route],
        originPolicy: OriginPolicy = OriginPolicy(),
        limits: Limits = Limits(),
        staticPages: [String: StaticPage] = [:],
        tls: ListenerTLSOptions? = nil,
        backendTLS: BackendTLSOptions = BackendTLSOptions(),
        auth: AuthOptions = AuthOptions(),
        web: WebOptions? = nil,
        trustedProxies: [AddressBlock] = [],
        trustsUnixSocketPeers: Bool = false,
        adminListen: ListenAddress? = nil,
        adminToken: String? = nil,
        recordPrefix: String? = nil,
        lifetime: ServerLifetime = ServerLifetime()
    ) throws(ConfigurationError) {
        self.recordPrefix = recordPrefix
        self.lifetime = lifetime
        self.listeners = listeners
        self.routes = try RouteTable(routes)
        self.originPolicy = originPolicy
        self.limits = limits
        self.staticPages = staticPages
        self.tls = tls
        self.backendTLS = backendTLS
        self.auth = auth
        self.web = web
        self.trustedProxies = trustedProxies
        self.trustsUnixSocketPeers = trustsUnixSocketPeers
        self.adminListen = adminListen
        self.adminToken = adminToken
        // A Unix listener's PROXY headers are believed from whoever may connect (the socket's mode
        // decides who that is); a TCP one needs the balancers' addresses.
        if trustedProxies.isEmpty, let listener = listeners.first(where: { $0.proxyProtocol && $0.unixPath == nil }) {
            throw ConfigurationError(flag: "--listen", value: "\(listener),proxy-protocol", problem: "needs the load balancers' addresses", expected: "--trusted-proxy CIDR")
        }
        if !auth.hasTokenSource, let route = routes.first(where: { $0.needsToken && !($0.target == .dynamic && auth.callback != nil) }) {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "needs tokens but no token source is given", expected: "--token-file PATH, --token-filenames DIR, --token-sockets DIR, --jwt-key FILE or --token-redis URL (or --auth-url URL for a dynamic route)")
        }
        if auth.callback == nil, let route = routes.first(where: \.options.asksAuthService) {
            throw ConfigurationError(flag: "--route", value: "\(route),auth=url", problem: "auth=url needs the service to ask", expected: "--auth-url URL")
        }
        if let callback = auth.callback, !routes.contains(where: { $0.options.asksAuthService || $0.target == .dynamic }) {
            throw ConfigurationError(flag: "--auth-url", value: callback.url, problem: "no route asks it", expected: "auth=url on a --route (e.g. --route /vnc=127.0.0.1:5900,auth=url), or a dynamic route")
        }
        if tls == nil, let route = routes.first(where: { !$0.options.clientNames.isEmpty }) {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "client-cn needs client certificates", expected: "--tls-cert, --tls-key and --tls-client-ca")
        }
        if let tls, tls.clientCAPath == nil, let route = routes.first(where: { !$0.options.clientNames.isEmpty }) {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "client-cn needs client certificates", expected: "--tls-client-ca FILE")
        }
    }
}

/// When a server stops by itself; by default it runs until signalled.
public struct ServerLifetime: Sendable, Equatable {
    /// Exit once no session has been open for this long (`--exit-when-idle`).
    public var exitWhenIdle: TimeAmount?
    /// Stop accepting this long after start, and exit when the last session ends (`--accept-for`).
    public var acceptFor: TimeAmount?
    /// Stop accepting after the first WebSocket session, and exit when it ends (`--run-once`).
    public var runOnce = false

    public init() {}

    public var isForever: Bool { self.exitWhenIdle == nil && self.acceptFor == nil && !self.runOnce }
}

/// A small in-memory response served for `GET path`.
public struct StaticPage: Sendable, Equatable {
    public var contentType: String
    public var body: String
    /// Sent with the page, e.g. a `Content-Security-Policy` that fits this page's inline script.
    public var headers: [String: String]

    public init(contentType: String, body: String, headers: [String: String] = [:]) {
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}
