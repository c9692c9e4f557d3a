import NIOCore

extension FerryServer {
    /// Applies what of `new` may change while the relay runs (the routes, the Origin rules, the limits
    /// and timeouts) and says what else differs (left as it is until a restart). New handshakes see
    /// the new table at once, and connections and sessions that start after it the new limits; live
    /// sessions keep the target and limits they were given. With `--reload-grace`, sessions whose route
    /// was removed or now leads elsewhere get close 1001 "route removed" when the grace is over.
    /// Routes that need what this relay started without (an authorizer, backend TLS) are not applied.
    @discardableResult
    public func reload(to new: FerryConfiguration) -> ConfigurationChange {
        let running = self.applied.withLockedValue { $0 } ?? self.environment.configuration
        // The relay's own names join the configured ones, as at start (RelayEnvironment).
        var new = new
        for name in RelayEnvironment.ownNames(tls: self.environment.tls) where !new.originPolicy.serverNames.contains(name) {
            new.originPolicy.serverNames.append(name)
        }
        let change = ConfigurationChange(from: running, to: new) { route in self.missing(for: route) }
        var nowRunning = running
        if !change.routesHeldBack {
            nowRunning.routes = new.routes
        }
        nowRunning.originPolicy = new.originPolicy
        nowRunning.limits = new.limits
        self.environment.policy.live.replace(with: .init(routes: nowRunning.routes, originPolicy: nowRunning.originPolicy))
        if !change.changedLimits.isEmpty {
            let limits = new.limits
            self.environment.liveLimits.replace(with: limits)
            self.environment.registry.setLimits(maxConnections: limits.maxConnections, maxConnectionsPerAddress: limits.maxConnectionsPerIP)
            self.acceptGate.setLimits(limit: Self.acceptLimit(maxConnections: limits.maxConnections), perAddressLimit: limits.maxConnectionsPerIP)
            self.environment.handshakeRate.setRate(limits.maxHandshakesPerSecondPerIP)
        }
        self.applied.withLockedValue { $0 = nowRunning }
        if let grace = new.limits.reloadGrace {
            self.endDisplacedSessions(old: running.routes, new: nowRunning.routes, after: grace)
        }
        let live = !(change.addedRoutes.isEmpty && change.removedRoutes.isEmpty && change.changedRoutes.isEmpty) && !change.routesHeldBack
            || change.originsChanged || !change.changedLimits.isEmpty
        self.metrics.configurationReloaded(result: live ? "applied" : "unchanged")
        return change
    }

    /// Counts a reload that could not be read (the last good configuration stays).
    public func reloadFailed() {
        self.metrics.configurationReloaded(result: "failed")
    }

    /// What the running relay lacks for `route`, if anything.
    func missing(for route: Route) -> String? {
        if route.needsAuthorization && self.environment.policy.authorizer == nil {
            return "it needs authorization, and this relay started without a token source"
        }
        if route.targets.contains(where: \.usesTLS) && self.environment.connector.tls == nil {
            return "a tls:// backend, and this relay started without one"
        }
        return nil
    }

    /// Schedules close 1001 "route removed" for the live sessions whose route is gone from `new`, or
    /// whose target is no longer one of the route's there (a pool that lost a member included). On a
    /// `dynamic` route, whose sessions' targets came from tokens, only the route's removal (or its
    /// change to a fixed target) counts.
    private func endDisplacedSessions(old: RouteTable, new: RouteTable, after grace: TimeAmount) {
        let routes = Dictionary(uniqueKeysWithValues: new.routes.map { ($0.path, $0) })
        let wasDynamic = Set(old.routes.filter { $0.target == .dynamic }.map(\.path))
        let displaced = self.environment.registry.liveSessions.filter { _, handle in
            let facts = handle.facts
            guard let route = routes[facts.route] else { return true }
            if route.target == .dynamic { return !wasDynamic.contains(facts.route) }
            return !route.targets.contains { $0.description == facts.target }
        }
        guard !displaced.isEmpty else { return }
        let registry = self.environment.registry
        let ids = Array(displaced.keys)
        let paths = Set(displaced.values.map(\.facts.route)).sorted()
        self.environment.logger.notice(
            "sessions on removed or changed routes end after the reload grace",
            metadata: ["sessions": "\(ids.count)", "routes": "\(paths.joined(separator: " "))", "grace": "\(grace)"]
        )
        self.group.next().scheduleTask(in: grace) {
            for id in ids { _ = registry.closeSession(id: id, code: 1001, reason: "route removed") }
        }
    }
}
