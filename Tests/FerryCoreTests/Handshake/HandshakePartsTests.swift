import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FerryCore

/// The pieces the handshake handler is made of, tested without a channel: the state table, the
/// accept value, and the answers to plain requests.
@Suite("Handshake parts")
struct HandshakePartsTests {
    @Test("Sec-WebSocket-Accept for RFC 6455's own example key")
    func acceptValue() {
        #expect(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test("the handshake's state table: the planned moves are allowed, the rest are not")
    func stateTable() {
        let loop = EmbeddedEventLoop()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        let connecting = HandshakeState.connecting(slot: 1, attempt: BackendConnectAttempt(), budget: loop.scheduleTask(in: .seconds(1)) {})
        let states: [HandshakeState] = [.awaitingHead, .readingBody(head), .deciding, connecting, .done]
        let allowed: Set<String> = [
            "awaitingHead→readingBody", "readingBody→deciding", "deciding→connecting", "connecting→deciding",
            "awaitingHead→done", "readingBody→done", "deciding→done", "connecting→done", "done→done",
        ]
        for from in states {
            for to in states {
                let move = "\(from.name)→\(to.name)"
                #expect(from.allows(to) == allowed.contains(move), "\(move)")
            }
        }
        #expect(HandshakeState.deciding.holdsReads && connecting.holdsReads)
        #expect(!HandshakeState.awaitingHead.holdsReads && !HandshakeState.done.holdsReads)
    }

    static func answers(pages: [String: StaticPage] = [:], web: Bool = false, basic: BasicCredentials? = nil, readiness: Readiness = Readiness()) throws -> PlainRequestAnswers {
        let files = web ? try StaticFileServer(options: WebOptions(root: FileManager.default.temporaryDirectory.path)) : nil
        return PlainRequestAnswers(readiness: readiness, staticPages: pages, staticFiles: files, basicCredentials: basic)
    }

    static func head(_ uri: String, method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri)
    }

    @Test("plain requests: /healthz, /readyz while starting, ready and draining, a static page, 405, a quiet 404")
    func plainAnswers() throws {
        let readiness = Readiness()
        let answers = try Self.answers(pages: ["/": StaticPage(contentType: "text/html", body: "<p>hi</p>", headers: ["X-Page": "yes"])], readiness: readiness)
        guard case .respond(.ok, _, "ok\n", _) = answers.answer(Self.head("/healthz")) else { Issue.record("healthz"); return }
        guard case .respond(.serviceUnavailable, _, "starting\n", _) = answers.answer(Self.head("/readyz")) else { Issue.record("starting"); return }
        readiness.set(.ready)
        guard case .respond(.ok, _, "ready\n", _) = answers.answer(Self.head("/readyz?x=1")) else { Issue.record("readyz"); return }
        readiness.set(.draining)
        guard case .respond(.serviceUnavailable, _, "draining\n", _) = answers.answer(Self.head("/readyz")) else { Issue.record("draining"); return }
        guard case .respond(.ok, "text/html", "<p>hi</p>", let headers) = answers.answer(Self.head("/")) else { Issue.record("page"); return }
        #expect(headers["X-Page"] == ["yes"], "a static page's own headers go with it")
        guard case .refuse(let notAllowed, .info) = answers.answer(Self.head("/", method: .POST)) else { Issue.record("POST"); return }
        #expect(notAllowed.status == .methodNotAllowed)
        guard case .refuse(let missing, .debug) = answers.answer(Self.head("/favicon.ico")) else { Issue.record("favicon"); return }
        #expect(missing.status == .notFound)
    }

    @Test("--web files: served; behind --basic-auth-web they need the credentials first")
    func files() throws {
        guard case .files = try Self.answers(web: true).answer(Self.head("/index.html")) else { Issue.record("files"); return }
        let basic = BasicCredentials(pairs: [(user: "u", password: "p")], protectsWeb: true)
        guard case .refuse(let refusal, _) = try Self.answers(web: true, basic: basic).answer(Self.head("/index.html")) else { Issue.record("basic"); return }
        #expect(refusal.status == .unauthorized)
        var head = Self.head("/index.html")
        head.headers.add(name: "Authorization", value: "Basic " + Data("u:p".utf8).base64EncodedString())
        guard case .files = try Self.answers(web: true, basic: basic).answer(head) else { Issue.record("authorized"); return }
    }
}
