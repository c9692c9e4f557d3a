/// A URL path prefix and the backend its sessions are relayed to.
public struct Route: Hashable, Sendable, CustomStringConvertible {
    /// Starts with `/`; has no trailing `/` unless it is `/` itself.
    public var path: String
    public var target: BackendTarget
    public var options: RouteOptions

    public init(path: String, target: BackendTarget, options: RouteOptions = RouteOptions()) {
        self.path = path
        self.target = target
        self.options = options
    }

    static let expected = "PATH=HOST:PORT or PATH=unix:/path (PATH=tls://HOST:PORT for a TLS backend)"

    /// Parses `PATH=TARGET[,OPTION=VALUE...]`.
    public static func parse(_ text: String, flag: String = "--route") throws(ConfigurationError) -> Route {
        guard let equals = text.firstIndex(of: "=") else {
            throw ConfigurationError(flag: flag, value: text, problem: "'=' is missing", expected: Self.expected)
        }
        var path = String(text[..<equals])
        let parts = text[text.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
        let targetText = String(parts.first ?? "")
        guard path.hasPrefix("/") else {
            throw ConfigurationError(flag: flag, value: text, problem: "path must start with /", expected: Self.expected)
        }
        guard !path.contains("?"), !path.contains("#"), !path.contains(" ") else {
            throw ConfigurationError(flag: flag, value: text, problem: "path may not contain '?', '#' or spaces", expected: Self.expected)
        }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard !targetText.isEmpty else {
            throw ConfigurationError(flag: flag, value: text, problem: "target is missing", expected: Self.expected)
        }
        let target: BackendTarget
        do {
            target = try BackendTarget.parse(targetText, flag: flag, context: text)
        } catch {
            throw ConfigurationError(flag: error.flag, value: error.value, problem: error.problem, expected: Self.expected)
        }
        let options = try RouteOptions.parse(parts.dropFirst(), flag: flag, route: text)
        if !options.verifyBackendTLS && !target.usesTLS {
            throw ConfigurationError(flag: flag, value: text, problem: "tls-verify applies only to tls:// targets")
        }
        return Route(path: path, target: target, options: options)
    }

    /// True if `requestPath` is this route's path or lies below it at a `/` boundary.
    /// Compared on bytes, not Characters: a combining mark after the `/` that follows the route's
    /// path would otherwise make one grapheme with it and hide the boundary.
    public func matches(_ requestPath: Substring) -> Bool {
        if self.path == "/" { return true }
        let request = requestPath.utf8
        guard request.starts(with: self.path.utf8) else { return false }
        let rest = request.dropFirst(self.path.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }

    public var description: String { "\(self.path)=\(self.target)" }
}

/// Per-route settings given after the target: `--route /vnc=127.0.0.1:5900,client-cn=alice`.
public struct RouteOptions: Hashable, Sendable {
    /// Client-certificate names (CN or DNS SAN) allowed on this route; empty allows any client.
    public var clientNames: Set<String> = []
    /// `tls-verify=false`: do not verify a `tls://` backend's certificate (lab setups only).
    public var verifyBackendTLS = true
    /// `auth=token`: a token valid for this route is required.
    public var requiresToken = false
    /// `auth=url`: the `--auth-url` service decides, and no token source is asked.
    public var asksAuthService = false
    /// `proxy-protocol=v2`: send the backend a PROXY v2 header with the client's address first.
    public var sendsProxyHeader = false

    public init(clientNames: Set<String> = [], verifyBackendTLS: Bool = true, requiresToken: Bool = false) {
        self.clientNames = clientNames
        self.verifyBackendTLS = verifyBackendTLS
        self.requiresToken = requiresToken
    }

    static func parse(_ items: ArraySlice<Substring>, flag: String, route: String) throws(ConfigurationError) -> RouteOptions {
        var options = RouteOptions()
        for item in items {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = pair[0]
            let value = pair.count == 2 ? String(pair[1]) : ""
            switch key {
            case "client-cn" where !value.isEmpty:
                options.clientNames.insert(value)
            case "tls-verify" where value == "false" || value == "true":
                options.verifyBackendTLS = value == "true"
            case "auth" where value == "token":
                options.requiresToken = true
                options.asksAuthService = false
            case "auth" where value == "url":
                options.asksAuthService = true
                options.requiresToken = false
            case "auth" where value == "none":
                options.requiresToken = false
                options.asksAuthService = false
            case "proxy-protocol" where value == "v2":
                options.sendsProxyHeader = true
            default:
                throw ConfigurationError(
                    flag: flag,
                    value: route,
                    problem: "unknown route option '\(item)'",
                    expected: "auth=token, auth=url, client-cn=NAME, proxy-protocol=v2 or tls-verify=false"
                )
            }
        }
        return options
    }
}

/// The configured routes; the longest matching path wins.
public struct RouteTable: Sendable {
    /// Sorted longest path first, so the first match is the most specific.
    public let routes: [Route]

    public init(_ routes: [Route]) throws(ConfigurationError) {
        var seen = Set<String>()
        for route in routes where !seen.insert(route.path).inserted {
            throw ConfigurationError(flag: "--route", value: route.description, problem: "path \(route.path) is routed twice", expected: "one --route per path")
        }
        self.routes = routes.sorted { $0.path.count > $1.path.count }
    }

    /// The route for a request target (path and optional query); the query is ignored.
    public func match(requestTarget: String) -> Route? {
        let path = requestTarget.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return self.routes.first { $0.matches(path) }
    }
}

extension Route {
    /// A token must open a session here: the route says `auth=token`, or its target comes from the token
    /// (unless the `--auth-url` service alone decides: `auth=url`).
    public var needsToken: Bool {
        if self.options.asksAuthService { return false }
        if case .dynamic = self.target { return true }
        return self.options.requiresToken
    }

    /// The ``Authorizer`` decides here: a token or the `--auth-url` service.
    public var needsAuthorization: Bool { self.needsToken || self.options.asksAuthService }
}
