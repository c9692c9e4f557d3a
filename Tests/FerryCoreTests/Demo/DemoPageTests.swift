import Crypto
import Foundation
import Testing

@testable import FerryCore
@testable import FerryDemo

/// The demo page's Content-Security-Policy must name the hashes of exactly the inline style and
/// script the page holds (one character off and the browser silently refuses to run them), and the
/// addresses put into the page and the start-up text must be the ones a terminal can dial.
@Suite("Demo page and start-up text")
struct DemoPageTests {
    static func between(_ open: String, _ close: String, in html: String) throws -> String {
        let start = try #require(html.range(of: open)).upperBound
        let end = try #require(html.range(of: close, range: start..<html.endIndex)).lowerBound
        return String(html[start..<end])
    }

    static func hash(_ text: String) -> String {
        "'sha256-" + Data(SHA256.hash(data: Array(text.utf8))).base64EncodedString() + "'"
    }

    @Test("the policy allows the page's own inline style and script by hash, and nothing inline else")
    func policyMatchesInlineBlocks() throws {
        let page = DemoPage.staticPage(chat: ListenAddress(host: "127.0.0.1", port: 8081))
        let policy = try #require(page.headers["Content-Security-Policy"])
        let script = try Self.between("<script>", "</script>", in: page.body)
        let style = try Self.between("<style>", "</style>", in: page.body)
        #expect(policy.contains("script-src \(Self.hash(script));"))
        #expect(policy.contains("style-src \(Self.hash(style));"))
        #expect(policy.contains("default-src 'none'"))
        #expect(policy.contains("connect-src 'self'"))
        #expect(!policy.contains("unsafe"))
        #expect(page.body.components(separatedBy: "<script").count == 2)
        #expect(page.body.components(separatedBy: "<style").count == 2)
        // Inline style attributes and event-handler attributes would be refused by this policy.
        #expect(!page.body.contains(" style=\""))
        #expect(!page.body.contains(" onclick="))
        #expect(!script.contains("innerHTML"))
        #expect(page.headers["X-Content-Type-Options"] == "nosniff")
    }

    @Test("a wildcard chat address is shown as one a terminal on the machine can dial")
    func dialableAddresses() {
        let wildcard = DemoTerminalCommands.commands(chat: ListenAddress(host: "0.0.0.0", port: 9000))
        #expect(wildcard[0] == "nc 127.0.0.1 9000")
        #expect(wildcard[1] == "socat - TCP:127.0.0.1:9000")
        let v6 = DemoTerminalCommands.commands(chat: ListenAddress(host: "::", port: 9000))
        #expect(v6[1] == "socat - TCP:[::1]:9000")
        #expect(v6[2].contains("create_connection((\"::1\",9000))"))
    }

    @Test("the start-up text names the page, nc and its alternatives, and the plain relay command")
    func banner() {
        let text = DemoBanner.text(listen: ListenAddress(host: "127.0.0.1", port: 8080), chat: ListenAddress(host: "127.0.0.1", port: 8081))
        #expect(text.contains("Open  http://127.0.0.1:8080/  in a browser"))
        #expect(text.contains("Join from a terminal:  nc 127.0.0.1 8081\n"))
        #expect(text.contains("                    or:  socat - TCP:127.0.0.1:8081\n"))
        #expect(text.contains("or:  python3 -c '"))
        #expect(text.contains("ferry --listen 127.0.0.1:8080 --route /chat=127.0.0.1:8081"))
    }

    @Test("addresses are escaped in the page")
    func escaping() {
        #expect(DemoPage.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }
}
