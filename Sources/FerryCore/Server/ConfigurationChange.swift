/// What a reload would change: routes added, removed and changed (by path), whether the Origin rules
/// changed, which limits and timeouts changed, and which other settings differ. Routes, Origin rules
/// and limits change while the relay runs; the rest is named as waiting for a restart, and the relay
/// keeps what it started with.
public struct ConfigurationChange: Sendable, Equatable {
    public var addedRoutes: [String] = []
    public var removedRoutes: [String] = []
    public var changedRoutes: [String] = []
    public var originsChanged = false
    /// The limits and timeouts that changed (``Limits``' field names), for what comes after the reload.
    public var changedLimits: [String] = []
    /// Settings that differ but are not changed live (by flag), and why routes could not be applied.
    public var needsRestart: [String] = []
    /// The new routes could not be applied (they need something this relay started without).
    public var routesHeldBack = false

    public init() {}

    /// Compares `old` (running) with `new`; `canServe` says whether the running relay has what a
    /// route needs (an authorizer, backend TLS).
    public init(from old: FerryConfiguration, to new: FerryConfiguration, canServe: (Route) -> String?) {
        let before = Dictionary(uniqueKeysWithValues: old.routes.routes.map { ($0.path, $0) })
        let after = Dictionary(uniqueKeysWithValues: new.routes.routes.map { ($0.path, $0) })
        self.addedRoutes = after.keys.filter { before[$0] == nil }.sorted()
        self.removedRoutes = before.keys.filter { after[$0] == nil }.sorted()
        self.changedRoutes = after.compactMap { path, route in before[path].map { $0 == route ? nil : path } ?? nil }.sorted()
        self.originsChanged = old.originPolicy != new.originPolicy
        for path in self.addedRoutes + self.changedRoutes {
            if let route = after[path], let missing = canServe(route) {
                self.needsRestart.append("--route \(path) (\(missing))")
                self.routesHeldBack = true
            }
        }
        self.changedLimits = Self.differingFields(old.limits, new.limits).filter { $0 != "reloadGrace" }
        let restartOnly: [(String, Bool)] = [
            ("--listen", old.listeners != new.listeners),
            ("--tls-*", old.tls != new.tls),
            ("--backend-ca", old.backendTLS != new.backendTLS),
            ("authentication (--token-*, --jwt-*, --auth-*, --basic-auth, --allow-target)", old.auth != new.auth),
            ("--web", old.web != new.web),
            ("--trusted-proxy", old.trustedProxies != new.trustedProxies || old.trustsUnixSocketPeers != new.trustsUnixSocketPeers),
            ("--admin-listen", old.adminListen != new.adminListen),
            ("--admin-token", old.adminToken != new.adminToken),
            ("--record", old.recordPrefix != new.recordPrefix),
            ("lifetime (--exit-when-idle, --accept-for, --run-once)", old.lifetime != new.lifetime),
        ]
        self.needsRestart += restartOnly.filter(\.1).map(\.0)
    }

    public var isEmpty: Bool {
        self.addedRoutes.isEmpty && self.removedRoutes.isEmpty && self.changedRoutes.isEmpty && !self.originsChanged
            && self.changedLimits.isEmpty && self.needsRestart.isEmpty
    }

    /// The routes whose sessions lose their route: removed, or changed (target or options).
    public var displacedRoutes: [String] { self.routesHeldBack ? [] : self.removedRoutes + self.changedRoutes }

    /// One line for the log: `routes +/ssh -/old ~/vnc; origins changed; needs a restart: --listen`.
    public var summary: String {
        guard !self.isEmpty else { return "no change" }
        var parts: [String] = []
        let routes = self.addedRoutes.map { "+" + $0 } + self.removedRoutes.map { "-" + $0 } + self.changedRoutes.map { "~" + $0 }
        if !routes.isEmpty { parts.append("routes " + routes.joined(separator: " ") + (self.routesHeldBack ? " (not applied)" : "")) }
        if self.originsChanged { parts.append("origins changed") }
        if !self.changedLimits.isEmpty { parts.append("limits " + self.changedLimits.joined(separator: " ")) }
        if !self.needsRestart.isEmpty { parts.append("needs a restart: " + self.needsRestart.joined(separator: "; ")) }
        return parts.joined(separator: "; ")
    }

    /// The names of the fields of two values of one type that differ (for "limits and timeouts (…)").
    static func differingFields<T>(_ a: T, _ b: T) -> [String] {
        let left = Mirror(reflecting: a).children
        let right = Array(Mirror(reflecting: b).children)
        return zip(left, right).compactMap { pair in
            String(describing: pair.0.value) == String(describing: pair.1.value) ? nil : pair.0.label
        }
    }
}
