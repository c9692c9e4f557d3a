// A Prometheus text exposition parsed into series, for the metrics tests.

/// One Prometheus text exposition, as `name{sorted labels}` → value.
struct PrometheusSamples: CustomStringConvertible {
    let text: String
    let values: [String: Double]

    init(_ text: String) {
        self.text = text
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            if let brace = series.firstIndex(of: "{"), series.hasSuffix("}") {
                let name = String(series[..<brace])
                let labelText = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                var labels: [(String, String)] = []
                var rest = Substring(labelText)
                while let equals = rest.firstIndex(of: "=") {
                    let key = String(rest[..<equals]).trimmingCommasAndSpaces
                    var afterEquals = rest[rest.index(after: equals)...]
                    guard afterEquals.first == "\"" else { break }
                    afterEquals = afterEquals.dropFirst()
                    guard let close = afterEquals.firstIndex(of: "\"") else { break }
                    labels.append((key, String(afterEquals[..<close])))
                    rest = afterEquals[afterEquals.index(after: close)...]
                }
                values[Self.key(name, labels)] = value
            } else {
                values[String(series)] = value
            }
        }
        self.values = values
    }

    static func key(_ name: String, _ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return name }
        return name + "{" + labels.sorted { $0.0 < $1.0 }.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    }

    func value(_ name: String, _ labels: [(String, String)] = []) -> Double? {
        self.values[Self.key(name, labels)]
    }

    /// Every series of one metric: labels (sorted key) → value.
    func series(_ name: String) -> [String: Double] {
        self.values.filter { $0.key == name || $0.key.hasPrefix(name + "{") }
    }

    var description: String { self.text }
}

extension String {
    fileprivate var trimmingCommasAndSpaces: String {
        String(self.drop { $0 == "," || $0 == " " })
    }
}
