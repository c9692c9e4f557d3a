import NIOHTTP1
import Testing

@testable import FerryCore

private let handshakeHeaders: [(String, String)] = [
    ("Host", "relay.example"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]

private func head(uri: String = "/vnc", _ extra: [(String, String)] = []) -> HTTPRequestHead {
    HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(handshakeHeaders + extra))
}

extension AuthTests {
    @Suite("Unit: where tokens are found")
    struct TokenCarrierTests {
        @Test("a bearer.TOKEN subprotocol carries the token")
        func subprotocol() {
            let found = PresentedToken.find(in: head([("Sec-WebSocket-Protocol", "binary, bearer.sub-token-1")]), cookieName: nil)
            #expect(found == PresentedToken(value: "sub-token-1", carrier: .subprotocol))
            // The same offer split over two header lines.
            let twoLines = head([("Sec-WebSocket-Protocol", "binary"), ("Sec-WebSocket-Protocol", "bearer.sub-token-2")])
            #expect(PresentedToken.find(in: twoLines, cookieName: nil) == PresentedToken(value: "sub-token-2", carrier: .subprotocol))
            // A JWT's dots survive: only the first `bearer.` is the prefix.
            let jwt = head([("Sec-WebSocket-Protocol", "binary, bearer.aaa.bbb.ccc")])
            #expect(PresentedToken.find(in: jwt, cookieName: nil)?.value == "aaa.bbb.ccc")
        }

        @Test("an empty bearer. subprotocol carries nothing")
        func emptySubprotocol() {
            #expect(PresentedToken.find(in: head([("Sec-WebSocket-Protocol", "binary, bearer.")]), cookieName: nil) == nil)
        }

        @Test("the cookie named by tokenCookie carries the token, among other cookies and Cookie lines")
        func cookie() {
            let found = PresentedToken.find(in: head([("Cookie", "theme=dark; ferry_token=cookie-token-1; lang=en")]), cookieName: "ferry_token")
            #expect(found == PresentedToken(value: "cookie-token-1", carrier: .cookie))
            let secondLine = head([("Cookie", "theme=dark"), ("Cookie", "ferry_token=cookie-token-2")])
            #expect(PresentedToken.find(in: secondLine, cookieName: "ferry_token") == PresentedToken(value: "cookie-token-2", carrier: .cookie))
            // A cookie whose name merely contains the configured one is not it.
            let lookalike = head([("Cookie", "xferry_token=nope; ferry_token_old=nope")])
            #expect(PresentedToken.find(in: lookalike, cookieName: "ferry_token") == nil)
        }

        @Test("cookies are ignored when no cookie name is configured")
        func cookieIgnoredWithoutName() {
            let request = head([("Cookie", "ferry_token=cookie-token"), ("Cookie", "token=cookie-token")])
            #expect(PresentedToken.find(in: request, cookieName: nil) == nil)
        }

        @Test("Authorization: Bearer carries the token; the scheme is case-insensitive; other schemes do not")
        func authorizationHeader() {
            #expect(PresentedToken.find(in: head([("Authorization", "Bearer header-token-1")]), cookieName: nil) == PresentedToken(value: "header-token-1", carrier: .authorizationHeader))
            #expect(PresentedToken.find(in: head([("Authorization", "bearer header-token-2")]), cookieName: nil)?.value == "header-token-2")
            #expect(PresentedToken.find(in: head([("Authorization", "Basic dXNlcjpwYXNz")]), cookieName: nil) == nil)
            #expect(PresentedToken.find(in: head([("Authorization", "Bearer")]), cookieName: nil) == nil)
        }

        @Test("the token query parameter carries the token, percent-decoded")
        func query() {
            #expect(PresentedToken.find(in: head(uri: "/vnc?token=query-token-1"), cookieName: nil) == PresentedToken(value: "query-token-1", carrier: .query))
            #expect(PresentedToken.find(in: head(uri: "/vnc?view=1&token=a%2Fb%2Bc%3D%3D&x=2"), cookieName: nil)?.value == "a/b+c==")
            #expect(PresentedToken.find(in: head(uri: "/vnc?token=caf%C3%A9+au+lait"), cookieName: nil)?.value == "café au lait")
            // Lookalike parameters are not it; a malformed escape is not a token.
            #expect(PresentedToken.find(in: head(uri: "/vnc?xtoken=nope&token_old=nope"), cookieName: nil) == nil)
            #expect(PresentedToken.find(in: head(uri: "/vnc?token=%zz"), cookieName: nil) == nil)
            #expect(PresentedToken.find(in: head(uri: "/vnc?token=%4"), cookieName: nil) == nil)
            #expect(PresentedToken.find(in: head(uri: "/vnc?token="), cookieName: nil) == nil)
            // A `token=` in the path is not a query parameter.
            #expect(PresentedToken.find(in: head(uri: "/vnc/token=path-token"), cookieName: nil) == nil)
        }

        @Test("precedence: subprotocol, then cookie, then Authorization, then query")
        func precedence() {
            let all: [(String, String)] = [
                ("Sec-WebSocket-Protocol", "binary, bearer.from-subprotocol"),
                ("Cookie", "ferry_token=from-cookie"),
                ("Authorization", "Bearer from-header"),
            ]
            let uri = "/vnc?token=from-query"
            #expect(PresentedToken.find(in: head(uri: uri, all), cookieName: "ferry_token") == PresentedToken(value: "from-subprotocol", carrier: .subprotocol))
            let noSubprotocol = Array(all.dropFirst())
            #expect(PresentedToken.find(in: head(uri: uri, noSubprotocol), cookieName: "ferry_token") == PresentedToken(value: "from-cookie", carrier: .cookie))
            // Without a configured cookie name the cookie is skipped even though it is there.
            #expect(PresentedToken.find(in: head(uri: uri, noSubprotocol), cookieName: nil) == PresentedToken(value: "from-header", carrier: .authorizationHeader))
            let headerOnly = Array(all.dropFirst(2))
            #expect(PresentedToken.find(in: head(uri: uri, headerOnly), cookieName: "ferry_token") == PresentedToken(value: "from-header", carrier: .authorizationHeader))
            #expect(PresentedToken.find(in: head(uri: uri), cookieName: "ferry_token") == PresentedToken(value: "from-query", carrier: .query))
            #expect(PresentedToken.find(in: head(), cookieName: "ferry_token") == nil)
        }

        @Test("fingerprint: the first 12 hex digits of SHA-256, never the token itself")
        func fingerprint() {
            // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
            #expect(PresentedToken.fingerprint(of: "abc") == "ba7816bf8f01")
            let token = PresentedToken(value: "a-secret-token", carrier: .query)
            #expect(token.fingerprint == PresentedToken.fingerprint(of: "a-secret-token"))
            #expect(token.fingerprint.count == 12)
            #expect(PresentedToken.fingerprint(of: "a-secret-token") != PresentedToken.fingerprint(of: "a-secret-tokeN"))
        }

        @Test("bearer.TOKEN offered alone is refused with 400 naming binary")
        func bearerAloneRejected() {
            let request = UpgradeRequest(head([("Sec-WebSocket-Protocol", "bearer.lonely-token")]))
            guard case .rejected(let rejection) = request else {
                Issue.record("expected a rejection, got \(request)")
                return
            }
            #expect(rejection.status == .badRequest)
            #expect(rejection.message.contains("binary"))
            #expect(!rejection.message.contains("lonely-token"))
        }

        @Test("bearer.TOKEN is never selected as the subprotocol")
        func bearerNeverSelected() {
            let request = UpgradeRequest(head([("Sec-WebSocket-Protocol", "bearer.tok-1, binary")]))
            #expect(request == .upgrade(WebSocketHandshake(offeredSubprotocols: ["bearer.tok-1", "binary"], subprotocol: "binary")))
            // Next to an unsupported protocol only, it is still refused (no acceptable choice).
            guard case .rejected(let rejection) = UpgradeRequest(head([("Sec-WebSocket-Protocol", "chat, bearer.tok-2")])) else {
                Issue.record("expected a rejection for chat + bearer")
                return
            }
            #expect(rejection.status == .badRequest)
            #expect(!rejection.message.contains("tok-2"))
        }
    }
}
