/// A response head read off the wire (status line and header fields), and the checks a 101 must pass
/// (RFC 6455 §4.1): `Upgrade: websocket`, `Connection: Upgrade`, the accept value computed from our
/// key, and a subprotocol and extensions only if offered.
struct UpgradeResponseHead: Equatable {
    var status: Int
    var reason: String
    /// Field names lower-cased, values trimmed, in order.
    var fields: [(name: String, value: String)]

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason && lhs.fields.elementsEqual(rhs.fields) { $0 == $1 }
    }

    /// Parses the head's text (without the blank line that ends it).
    static func parse(_ text: String) throws(ConnectFailure) -> UpgradeResponseHead {
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let statusLine = lines.popFirst(), statusLine.hasPrefix("HTTP/1.") else {
            throw .notWebSocket(reason: "the answer is not HTTP")
        }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1].count == 3, let status = Int(parts[1]) else {
            throw .notWebSocket(reason: "the answer's status line is malformed")
        }
        var fields: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw .notWebSocket(reason: "a header line of the answer has no ':'")
            }
            fields.append((line[..<colon].lowercased(), String(line[line.index(after: colon)...].trimmingSpaces)))
        }
        return UpgradeResponseHead(status: status, reason: parts.count == 3 ? String(parts[2]) : "", fields: fields)
    }

    func values(_ name: String) -> [String] {
        self.fields.filter { $0.name == name }.map(\.value)
    }

    /// Comma-separated values across every line of the field, trimmed, lower-cased.
    func tokens(_ name: String) -> [String] {
        self.values(name).flatMap { $0.split(separator: ",") }.map { String($0.trimmingSpaces).lowercased() }
    }

    /// Checks a 101 against the request; returns the subprotocol the relay chose, if any.
    func checkSwitchingProtocols(for request: ClientUpgradeRequest) throws(ConnectFailure) -> String? {
        guard self.tokens("upgrade") == ["websocket"] else {
            throw .notWebSocket(reason: "the 101 does not upgrade to websocket")
        }
        guard self.tokens("connection").contains("upgrade") else {
            throw .notWebSocket(reason: "the 101 has no 'Connection: Upgrade'")
        }
        guard self.values("sec-websocket-accept") == [request.expectedAccept] else {
            throw .notWebSocket(reason: "the 101's Sec-WebSocket-Accept does not match the request's key")
        }
        guard self.values("sec-websocket-extensions").allSatisfy(\.isEmpty) else {
            throw .notWebSocket(reason: "the 101 names an extension that was not offered")
        }
        let chosen = self.values("sec-websocket-protocol")
        guard chosen.count <= 1 else {
            throw .notWebSocket(reason: "the 101 chose more than one subprotocol")
        }
        if let protocolName = chosen.first {
            guard request.offeredSubprotocols.contains(protocolName) else {
                throw .notWebSocket(reason: "the 101 chose a subprotocol that was not offered")
            }
            return protocolName
        }
        return nil
    }
}
