/// A URL path prefix and the backend its sessions are relayed to: one target, or a pool of them
/// (the same path routed more than once), tried in the order of the route's `balance=`.
public struct Route: Hashable, Sendable, CustomStringConvertible {
    /// Starts with `/`; has no trailing `/` unless it is `/` itself.
    public var path: String
    /// The first (or only) target; the one a token for this route must name.
    public var target: BackendTarget
    public var options: RouteOptions
    /// Every target, `target` first; more than one makes a pool.
    public var targets: [BackendTarget]

    public init(path: String, target: BackendTarget, options: RouteOptions = RouteOptions()) {
        self.path = path
        self.target = target
        self.options = options
        self.targets = [target]
    }

    /// A route to several targets.
    public init(path: String, pool: [BackendTarget], options: RouteOptions = RouteOptions()) {
        precondition(!pool.isEmpty, "a pool has at least one target")
        self.path = path
        self.target = pool[0]
        self.options = options
        self.targets = pool
    }

    public var isPool: Bool { self.targets.count > 1 }

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

    public var description: String { "\(self.path)=" + self.targets.map(\.description).joined(separator: "|") }
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
    /// `balance=`: the order a pool's targets are tried in. `nil` when not given (round-robin).
    public var balance: Balance?

    /// How a pool picks the target to try first.
    public enum Balance: String, Hashable, Sendable, CaseIterable {
        /// Each new session starts at the next target.
        case roundRobin = "round-robin"
        /// The target with the fewest live sessions first.
        case leastSessions = "least-sessions"
        /// The same client address always starts at the same target (affinity), as long as it is up.
        case hashClient = "hash-client"
    }

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
            case "balance":
                guard let balance = Balance(rawValue: value) else {
                    throw ConfigurationError(flag: flag, value: route, problem: "unknown balance '\(value)'", expected: "balance=round-robin, balance=least-sessions or balance=hash-client")
                }
                options.balance = balance
            default:
                throw ConfigurationError(
                    flag: flag,
                    value: route,
                    problem: "unknown route option '\(item)'",
                    expected: "auth=token, auth=url, balance=MODE, client-cn=NAME, proxy-protocol=v2 or tls-verify=false"
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

    /// Routes to the same path make one pool, in the order given: `--route /mqtt=10.0.0.1:1883
    /// --route /mqtt=10.0.0.2:1883,balance=least-sessions`. Options given on one of them hold for the
    /// pool; two that say different things, a `dynamic` target or the same target twice are refused.
    public init(_ routes: [Route]) throws(ConfigurationError) {
        var merged: [Route] = []
        var index: [String: Int] = [:]
        for route in routes {
            guard let at = index[route.path] else {
                index[route.path] = merged.count
                merged.append(route)
                continue
            }
            merged[at] = try Self.pooled(merged[at], route)
        }
        self.routes = merged.sorted { $0.path.count > $1.path.count }
    }

    /// `first` with `next`'s targets added, and their options combined.
    private static func pooled(_ first: Route, _ next: Route) throws(ConfigurationError) -> Route {
        func refuse(_ problem: String, _ expected: String) -> ConfigurationError {
            ConfigurationError(flag: "--route", value: next.description, problem: problem, expected: expected)
        }
        if first.target == .dynamic || next.target == .dynamic {
            throw refuse("path \(next.path) is routed twice, and a dynamic route cannot be a pool", "one --route per path for a dynamic target")
        }
        if let repeated = next.targets.first(where: { first.targets.contains($0) }) {
            throw refuse("path \(next.path) is routed twice to \(repeated)", "each target of a pool once")
        }
        var mine = first.options
        var theirs = next.options
        let balances = (mine.balance, theirs.balance)
        mine.balance = nil
        theirs.balance = nil
        if let a = balances.0, let b = balances.1, a != b {
            throw refuse("the routes of pool \(next.path) give different balance= modes", "balance= on one of the pool's --route flags")
        }
        var options: RouteOptions
        if mine == RouteOptions() {
            options = theirs
        } else if theirs == RouteOptions() || theirs == mine {
            options = mine
        } else {
            throw refuse("the routes of pool \(next.path) give different options", "the options on one of the pool's --route flags, or the same on each")
        }
        options.balance = balances.0 ?? balances.1
        return Route(path: first.path, pool: first.targets + next.targets, options: options)
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
