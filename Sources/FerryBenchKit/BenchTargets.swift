import Foundation

/// The targets a relay is held to (BENCHMARKS.md), checked on a finished report: kept apart from the
/// scenarios so that every bound reads in one place.
extension BenchRunner {
    func checkTargets(_ report: BenchReport) -> [TargetCheck] {
        guard let relay = self.options.relays.first?.name else { return [] }
        var checks: [TargetCheck] = []
        func ratio(_ scenario: String, _ metric: String, path: String = relay) -> Double? {
            guard let value = report.value(scenario, metric, path), let base = report.value(scenario, metric, "tcp"), base > 0 else { return nil }
            return value / base
        }
        func add(_ target: String, _ value: Double?, _ format: (Double) -> String, _ met: (Double) -> Bool) {
            guard let value else { return }
            checks.append(TargetCheck(target: target, measured: format(value), met: met(value)))
        }
        // Next to a ratio to TCP, a plain TCP relay's ratio in the same run (when measured): the floor
        // that one more hop sets on this machine, whatever the relay.
        func timesWithFloor(_ scenario: String, _ metric: String) -> (Double) -> String {
            guard let floorRelay = self.options.tcpRelays.first?.name, let floor = ratio(scenario, metric, path: floorRelay) else { return times }
            return { "\(times($0)) (\(floorRelay): \(times(floor)))" }
        }
        for (metric, bound) in [("upload, 1 connection", 0.75), ("download, 1 connection", 0.75)] {
            add("\(metric) ≥ \(bound) × TCP", ratio("throughput", metric), timesWithFloor("throughput", metric)) { $0 >= bound }
        }
        for (percentile, bound) in [("p50", 1.3), ("p99", 1.5)] {
            let metric = "\(self.options.echoSize) B echo RTT \(percentile)"
            add("echo RTT \(percentile) ≤ \(bound) × TCP", ratio("latency", metric), timesWithFloor("latency", metric)) { $0 <= bound }
        }
        if let step = self.options.idleSteps.first(where: { $0 >= 5000 }) ?? self.options.idleSteps.last {
            let working = report.value("idle", "\(step) sessions: working", relay)
            add("\(step) idle sessions all working", working, { String(format: "%.0f", $0) }) { $0 >= Double(step) }
            add("≤ 16 KiB relay RSS per idle session (\(step))", report.value("idle", "\(step) sessions: RSS per session", relay), { String(format: "%.1f KiB", $0) }) { $0 <= 16 }
        }
        let bound = Double(self.options.relayBufferSize) / 1_048_576 + 1
        let mib = { (value: Double) in String(format: "%.2f MiB", value) }
        add("stalled backend: RSS growth ≤ buffer + 1 MiB", report.value("stall", "client pushes, backend reads nothing: RSS growth", relay), mib) { $0 <= bound }
        add("stalled client: RSS growth ≤ buffer + 1 MiB", report.value("stall", "backend pushes, client reads nothing: RSS growth", relay), mib) { $0 <= bound }
        add("one \(self.options.bigFrameBytes >> 20) MiB frame: RSS growth ≤ 4 MiB", report.value("bigframe", "one \(self.options.bigFrameBytes >> 20) MiB frame: RSS growth", relay), mib) { $0 <= 4 }
        add("ping flood, client reads nothing: RSS growth ≤ 16 MiB", report.value("hostile", "one client floods pings, reads nothing: RSS growth", relay), mib) { $0 <= 16 }
        // Per direction: the buffer, plus the one read burst in flight when it fills (2 reads of at most
        // min(128 KiB, half the buffer)).
        let perReaderBound = Double(self.options.relayBufferSize + 2 * min(128 * 1024, self.options.relayBufferSize / 2)) / 1024
        add(
            "clients not reading: RSS growth per client ≤ buffer + one read burst (\(Int(perReaderBound)) KiB)",
            report.value("hostile", "\(self.options.nonReadingClients) clients not reading: RSS growth per client", relay),
            { String(format: "%.0f KiB", $0) }
        ) { $0 <= perReaderBound }
        if let peak = report.value("hostile", "burst of \(self.options.burstSessions) sessions: RSS growth at the peak", relay) {
            add(
                "after a burst, RSS growth ≤ a quarter of the peak's (\(String(format: "%.1f", peak)) MiB)",
                report.value("hostile", "burst of \(self.options.burstSessions) sessions: RSS growth after they ended", relay),
                mib
            ) { $0 <= peak / 4 }
        }
        add("unmasking ≥ 5 GB/s on one core", report.value("unmask", "word-wise unmask, 1 core", relay), { String(format: "%.1f GB/s", $0) }) { $0 >= 5 }
        add("wss handshakes ≥ 500/s with ECDSA P-256", report.value("tls", "wss ECDSA P-256: handshakes, \(self.options.parallelHandshakeClients) parallel clients", relay), { String(format: "%.0f/s", $0) }) { $0 >= 500 }
        add("handshakes ≥ 3000/s with \(self.options.parallelHandshakeClients) clients", report.value("handshakes", "\(self.options.parallelHandshakeClients) parallel clients", relay), { String(format: "%.0f/s", $0) }) { $0 >= 3000 }
        checks += self.peerTargets(report, relay: relay)
        checks += self.clientTargets(report)
        return checks
    }

    /// Round two's targets (issue 16), against the peers measured in the same run: websocat for
    /// handshakes and round trips, the best plain TCP relay (socat, HAProxy) for round trips,
    /// throughput and CPU per GiB. A target whose peer was not measured is left out.
    private func peerTargets(_ report: BenchReport, relay: String) -> [TargetCheck] {
        var checks: [TargetCheck] = []
        func compare(_ target: String, _ scenario: String, _ metric: String, against peer: String, _ met: (Double) -> Bool) {
            guard let mine = report.value(scenario, metric, relay), let theirs = report.value(scenario, metric, peer), theirs > 0 else { return }
            checks.append(TargetCheck(target: target, measured: "\(times(mine / theirs)) (\(peer))", met: met(mine / theirs)))
        }
        let websocat = self.options.relays.first { $0.name.hasPrefix("websocat") }?.name
        if let websocat {
            for metric in ["sequential", "\(self.options.parallelHandshakeClients) parallel clients"] {
                compare("handshakes, \(metric) ≥ 1.25 × websocat", "handshakes", metric, against: websocat) { $0 >= 1.25 }
            }
        }
        for percentile in ["p50", "p99"] {
            let metric = "\(self.options.echoSize) B echo RTT \(percentile)"
            for peer in [websocat].compactMap({ $0 }) + self.options.tcpRelays.map(\.name) {
                compare("echo RTT \(percentile) ≤ \(peer)'s", "latency", metric, against: peer) { $0 <= 1 }
            }
        }
        // The best plain TCP relay per figure: the highest throughput, the least CPU per GiB.
        func best(_ metric: String, higherIsBetter: Bool) -> String? {
            let values = self.options.tcpRelays.compactMap { peer in report.value("throughput", metric, peer.name).map { (peer.name, $0) } }
            return (higherIsBetter ? values.max { $0.1 < $1.1 } : values.min { $0.1 < $1.1 })?.0
        }
        for direction in ["upload", "download"] {
            for connections in ["1 connection", "\(self.options.parallelConnections) connections"] {
                let metric = "\(direction), \(connections)"
                if let peer = best(metric, higherIsBetter: true) {
                    compare("\(metric) ≥ the best plain TCP relay", "throughput", metric, against: peer) { $0 >= 1 }
                }
            }
            let cpu = "relay CPU, \(direction), 1 connection"
            if let peer = best(cpu, higherIsBetter: false) {
                compare("CPU per GiB, \(direction) ≤ 0.85 × the best plain TCP relay", "throughput", cpu, against: peer) { $0 <= 0.85 }
            }
        }
        return checks
    }
}

extension BenchRunner {
    /// The client end's targets (issue 17), against websocat's client end in the same run; its
    /// memory per idle local session on its own.
    fileprivate func clientTargets(_ report: BenchReport) -> [TargetCheck] {
        guard let mine = self.options.clients.first?.name else { return [] }
        var checks: [TargetCheck] = []
        if let idle = report.measurements.first(where: { $0.scenario == "client" && $0.path == mine && $0.metric.hasSuffix("RSS per session") }) {
            checks.append(TargetCheck(target: "\(mine): ≤ 16 KiB per idle local session", measured: String(format: "%.1f KiB", idle.value), met: idle.value <= 16))
        }
        guard let websocat = self.options.clients.first(where: { $0.name.hasPrefix("websocat") })?.name else { return checks }
        func compare(_ target: String, _ metric: String, _ met: (Double) -> Bool) {
            guard let value = report.value("client", metric, mine), let theirs = report.value("client", metric, websocat), theirs > 0 else { return }
            checks.append(TargetCheck(target: target, measured: "\(times(value / theirs)) (\(websocat))", met: met(value / theirs)))
        }
        compare("\(mine): upload ≥ 2.5 × websocat's client", "upload, 1 connection") { $0 >= 2.5 }
        compare("\(mine): download ≥ 1.3 × websocat's client", "download, 1 connection") { $0 >= 1.3 }
        compare("\(mine): client CPU per GiB, upload < websocat's", "client CPU, upload, 1 connection") { $0 < 1 }
        compare("\(mine): client CPU per GiB, download < websocat's", "client CPU, download, 1 connection") { $0 < 1 }
        compare("\(mine): echo RTT p50 ≤ websocat's client", "\(self.options.echoSize) B echo RTT p50") { $0 <= 1 }
        return checks
    }
}

/// A ratio as the target tables print it: "0.52×".
private func times(_ value: Double) -> String {
    String(format: "%.2f×", value)
}
