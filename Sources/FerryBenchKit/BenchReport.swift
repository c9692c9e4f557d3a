import Foundation

/// One number from one path (plain TCP or a relay) in one scenario.
public struct Measurement: Codable, Sendable {
    public var scenario: String
    public var metric: String
    public var unit: String
    /// `tcp` for the baseline, else the relay's name.
    public var path: String
    public var value: Double
    /// Whether a larger value is better (throughput) or worse (latency, memory).
    public var higherIsBetter: Bool
}

/// A target from the performance issue, checked on the first relay.
public struct TargetCheck: Codable, Sendable {
    public var target: String
    public var measured: String
    public var met: Bool
}

public struct BenchReport: Codable, Sendable {
    public var date: String
    public var machine: String
    public var command: String
    public var measurements: [Measurement]
    public var targets: [TargetCheck]

    /// The value for a metric and path, if measured.
    public func value(_ scenario: String, _ metric: String, _ path: String) -> Double? {
        self.measurements.first { $0.scenario == scenario && $0.metric == metric && $0.path == path }?.value
    }

    /// A plain-text table: one row per metric, a column per path, and each relay's ratio to plain TCP
    /// (for the paths that have one: the auth scenario's have no plain-TCP counterpart).
    public func table() -> String {
        let paths = self.paths
        let relays = paths.filter { path in
            path != "tcp" && self.metrics.contains { self.value($0.0, $0.1, path) != nil && self.value($0.0, $0.1, "tcp") != nil }
        }
        var rows: [[String]] = [["scenario", "metric", "unit"] + paths + relays.map { "\($0)/tcp" }]
        for (scenario, metric) in self.metrics {
            let sample = self.measurements.first { $0.scenario == scenario && $0.metric == metric }!
            var row = [scenario, metric, sample.unit]
            for path in paths { row.append(self.value(scenario, metric, path).map(Self.format) ?? "-") }
            for relay in relays {
                if let relayValue = self.value(scenario, metric, relay), let base = self.value(scenario, metric, "tcp"), base > 0 {
                    row.append(String(format: "%.2f", relayValue / base))
                } else {
                    row.append("-")
                }
            }
            rows.append(row)
        }
        return Self.render(rows)
    }

    public func targetTable() -> String {
        Self.render([["target", "measured", "result"]] + self.targets.map { [$0.target, $0.measured, $0.met ? "met" : "MISSED"] })
    }

    /// Markdown version of both tables, for BENCHMARKS.md.
    public func markdown() -> String {
        func md(_ text: String) -> String {
            let lines = text.split(separator: "\n")
            guard let header = lines.first else { return "" }
            let cells = { (line: Substring) in "| " + line.split(separator: "│").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | ") + " |" }
            let columns = header.split(separator: "│").count
            return ([cells(header), "|" + String(repeating: " --- |", count: columns)] + lines.dropFirst(2).map(cells)).joined(separator: "\n")
        }
        return md(self.table()) + "\n\n" + md(self.targetTable()) + "\n"
    }

    var paths: [String] {
        var seen: [String] = []
        for measurement in self.measurements where !seen.contains(measurement.path) { seen.append(measurement.path) }
        return seen.sorted { ($0 == "tcp" ? 0 : 1) < ($1 == "tcp" ? 0 : 1) }
    }

    var metrics: [(String, String)] {
        var seen: [(String, String)] = []
        for measurement in self.measurements where !seen.contains(where: { $0 == (measurement.scenario, measurement.metric) }) {
            seen.append((measurement.scenario, measurement.metric))
        }
        return seen
    }

    static func format(_ value: Double) -> String {
        if value >= 100 { return String(format: "%.0f", value) }
        if value >= 10 { return String(format: "%.1f", value) }
        return String(format: "%.2f", value)
    }

    static func render(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.map(\.count).max() ?? 0)).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max()! }
        var lines: [String] = []
        for (index, row) in rows.enumerated() {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: " │ "))
            if index == 0 { lines.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "─┼─")) }
        }
        return lines.joined(separator: "\n")
    }

    /// An SVG bar chart of each relay's ratio to plain TCP per metric; an arrow by each label says
    /// whether a higher ratio is better.
    public func svgChart() -> String {
        let relays = self.paths.filter { $0 != "tcp" }
        let rows = self.metrics.compactMap { (scenario, metric) -> (String, Bool, [Double?])? in
            guard let base = self.value(scenario, metric, "tcp"), base > 0 else { return nil }
            let higher = self.measurements.first { $0.scenario == scenario && $0.metric == metric }!.higherIsBetter
            return ("\(scenario): \(metric)", higher, relays.map { self.value(scenario, metric, $0).map { $0 / base } })
        }
        let colors = ["#2f6fdf", "#e0822d", "#3aa55d", "#b04ad0", "#d0433b", "#2bb5b8", "#8a6d3b", "#7f7f7f"]
        let barHeight = 14, gap = 6, labelWidth = 300, chartWidth = 420
        let groupHeight = relays.count * barHeight + gap * 2
        // The legend takes rows of four; the axis stops at 3× (a longer bar is cut, its label says how
        // long): one relay 30× slower must not shrink every other bar to a sliver.
        let legendRows = (relays.count + 3) / 4
        let chartTop = 52 + legendRows * 16
        let height = chartTop + rows.count * groupHeight + 30
        let maxRatio = min(3.0, max(2.0, rows.flatMap { $0.2.compactMap { $0 } }.max() ?? 1))
        func x(_ ratio: Double) -> Int { labelWidth + Int(Double(chartWidth) * min(ratio, maxRatio) / maxRatio) }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(labelWidth + chartWidth + 80)" height="\(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="20" font-size="15" font-weight="bold">Relay ÷ plain TCP, same backend, same run</text>
            <text x="10" y="38" fill="#555">↑ throughput and handshakes: higher is better; ↓ latency: lower is better. 1.0 = as fast as plain TCP.</text>

            """
        for (index, relay) in relays.enumerated() {
            let left = 10 + (index % 4) * 200, row = 48 + (index / 4) * 16
            svg += "<rect x=\"\(left)\" y=\"\(row)\" width=\"10\" height=\"10\" fill=\"\(colors[index % colors.count])\"/><text x=\"\(left + 14)\" y=\"\(row + 9)\">\(relay)</text>\n"
        }
        var y = chartTop
        for (label, higher, ratios) in rows {
            svg += "<text x=\"10\" y=\"\(y + groupHeight / 2)\">\(higher ? "↑" : "↓") \(label)</text>\n"
            for (index, ratio) in ratios.enumerated() {
                let top = y + gap + index * barHeight
                if let ratio {
                    svg += "<rect x=\"\(labelWidth)\" y=\"\(top)\" width=\"\(x(ratio) - labelWidth)\" height=\"\(barHeight - 2)\" fill=\"\(colors[index % colors.count])\"/>"
                    svg += "<text x=\"\(x(ratio) + 4)\" y=\"\(top + barHeight - 4)\">\(String(format: "%.2f", ratio))</text>\n"
                }
            }
            y += groupHeight
        }
        svg += "<line x1=\"\(x(1))\" y1=\"\(chartTop - 6)\" x2=\"\(x(1))\" y2=\"\(y)\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n"
        svg += "<text x=\"\(x(1) - 10)\" y=\"\(y + 16)\">1.0</text>\n</svg>\n"
        return svg
    }
}
