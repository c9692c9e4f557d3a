import Foundation
import NIOHTTP1

/// The admin port's sessions API: what a request asks for, and the listing's JSON.
///
/// - `GET /sessions`: one object per live session.
/// - `DELETE /sessions/ID`: closes it with 1008 "closed by administrator", or `?code=` in 4000–4999.
/// - `DELETE /sessions?token=FINGERPRINT`: the same for every session of that token.
enum SessionsRequest: Equatable {
    case list
    case closeOne(id: UInt64, code: UInt16)
    case closeByToken(fingerprint: String, code: UInt16)

    static let reason = "closed by administrator"

    /// A refusal: the status and a one-line message saying what to send instead.
    struct Refusal: Error, Equatable {
        var status: HTTPResponseStatus
        var message: String
    }

    /// nil: not a sessions path.
    static func parse(method: HTTPMethod, uri: String) throws(Refusal) -> SessionsRequest? {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        let query = parts.count > 1 ? Self.query(String(parts[1])) : [:]
        guard path == "/sessions" || path.hasPrefix("/sessions/") else { return nil }
        let rest = path.dropFirst("/sessions".count).drop(while: { $0 == "/" })
        switch method {
        case .GET where rest.isEmpty:
            return .list
        case .DELETE:
            let code = try Self.code(query["code"])
            if rest.isEmpty {
                guard let fingerprint = query["token"], !fingerprint.isEmpty else {
                    throw Refusal(status: .badRequest, message: "DELETE /sessions needs ?token=FINGERPRINT (from GET /sessions), or use DELETE /sessions/ID")
                }
                return .closeByToken(fingerprint: fingerprint, code: code)
            }
            guard let id = UInt64(rest) else {
                throw Refusal(status: .notFound, message: "no session \(rest.prefix(40)): ids are numbers (GET /sessions lists them)")
            }
            return .closeOne(id: id, code: code)
        case .GET:
            throw Refusal(status: .notFound, message: "GET /sessions lists the sessions; DELETE /sessions/ID ends one")
        default:
            throw Refusal(status: .methodNotAllowed, message: "use GET /sessions or DELETE /sessions/ID")
        }
    }

    /// 1008 unless `?code=` gives one an application may use (RFC 6455 §7.4.2: 4000–4999).
    private static func code(_ text: String?) throws(Refusal) -> UInt16 {
        guard let text else { return 1008 }
        guard let code = UInt16(text), (4000...4999).contains(code) else {
            throw Refusal(status: .badRequest, message: "?code=\(text.prefix(20)): expected a close code from 4000 to 4999 (or none, for 1008)")
        }
        return code
    }

    private static func query(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(halves[0]).removingPercentEncoding ?? String(halves[0])
            let value = halves.count > 1 ? (String(halves[1]).removingPercentEncoding ?? String(halves[1])) : ""
            fields[name] = value
        }
        return fields
    }
}

/// The JSON of `GET /sessions`.
enum SessionsListing {
    struct Entry: Encodable {
        var id: String
        var client: String
        var via: String?
        var route: String
        var target: String
        /// The token's fingerprint, never the token.
        var token: String?
        var clientCertCN: String?
        var started: Date
        var bytesToBackend: UInt64
        var bytesToClient: UInt64
        var lastActivity: Date

        enum CodingKeys: String, CodingKey {
            case id, client, via, route, target, token, started
            case clientCertCN = "client_cert_cn"
            case bytesToBackend = "bytes_to_backend"
            case bytesToClient = "bytes_to_client"
            case lastActivity = "last_activity"
        }

        func encode(to encoder: Encoder) throws {
            // Absent values are written as null, so every object has the same keys.
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.id, forKey: .id)
            try container.encode(self.client, forKey: .client)
            try container.encode(self.via, forKey: .via)
            try container.encode(self.route, forKey: .route)
            try container.encode(self.target, forKey: .target)
            try container.encode(self.token, forKey: .token)
            try container.encode(self.clientCertCN, forKey: .clientCertCN)
            try container.encode(self.started, forKey: .started)
            try container.encode(self.bytesToBackend, forKey: .bytesToBackend)
            try container.encode(self.bytesToClient, forKey: .bytesToClient)
            try container.encode(self.lastActivity, forKey: .lastActivity)
        }
    }

    private struct Listing: Encodable {
        var count: Int
        var sessions: [Entry]
    }

    /// Sessions oldest first.
    static func json(_ sessions: [(id: UInt64, facts: LiveSessionFacts, counters: LiveSessionCounters)]) -> String {
        let entries = sessions.sorted { $0.id < $1.id }.map { session in
            Entry(
                id: String(session.id),
                client: session.facts.client,
                via: session.facts.via,
                route: session.facts.route,
                target: session.facts.target,
                token: session.facts.tokenFingerprint,
                clientCertCN: session.facts.clientCertificateCN,
                started: session.facts.started,
                bytesToBackend: session.counters.bytesToBackend,
                bytesToClient: session.counters.bytesToClient,
                lastActivity: session.counters.lastActivity
            )
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Listing(count: entries.count, sessions: entries))) ?? Data("{\"count\":0,\"sessions\":[]}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
