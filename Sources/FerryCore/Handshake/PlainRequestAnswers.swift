import Logging
import NIOHTTP1

/// What a plain HTTP request (not an upgrade) gets: `/healthz`, `/readyz`, the configured static
/// pages, then `--web` files (behind `--basic-auth` with `--basic-auth-web`), else 404. A value that
/// says what to answer; ``HTTPHandshakeHandler`` writes it, so these rules are tested without a channel.
struct PlainRequestAnswers: Sendable {
    enum Answer {
        case respond(HTTPResponseStatus, contentType: String, body: String, headers: HTTPHeaders = [:])
        /// Refused, logged at `level`.
        case refuse(HandshakeRejection, level: Logger.Level)
        /// Streamed from the `--web` folder.
        case files(StaticFileServer)
    }

    let readiness: Readiness
    let staticPages: [String: StaticPage]
    let staticFiles: StaticFileServer?
    let basicCredentials: BasicCredentials?

    func answer(_ head: HTTPRequestHead) -> Answer {
        guard head.method == .GET || head.method == .HEAD else { return .refuse(.methodNotAllowed("GET, HEAD"), level: .info) }
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        switch path {
        case "/healthz":
            // The process is alive and answering.
            return .respond(.ok, contentType: Self.text, body: "ok\n")
        case "/readyz":
            let state = self.readiness.state
            return .respond(state == .ready ? .ok : .serviceUnavailable, contentType: Self.text, body: "\(state.rawValue)\n")
        default:
            break
        }
        if let page = self.staticPages[path] {
            let headers = HTTPHeaders(page.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            return .respond(.ok, contentType: page.contentType, body: page.body, headers: headers)
        }
        if let files = self.staticFiles {
            if let basic = self.basicCredentials, basic.protectsWeb, let refusal = basic.check(head.headers) {
                return .refuse(refusal, level: .info)
            }
            return .files(files)
        }
        // A browser asks for /favicon.ico on every page load: a plain request's miss is not news.
        return .refuse(.notFound("not found; this is a WebSocket relay"), level: .debug)
    }

    static let text = "text/plain; charset=utf-8"
}
