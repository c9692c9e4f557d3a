import NIOHTTP1
import Testing

@testable import FerryCore

/// The allocation-free header reads the upgrade uses: the same answers as NIO's `headers[name]` and
/// `headers[canonicalForm:]` would give, ASCII case-insensitively.
@Suite("Unit: header scan")
struct HeaderScanTests {
    private let headers: HTTPHeaders = [
        "Host": " example.com ",
        "connection": "keep-alive, Upgrade",
        "UPGRADE": "WebSocket",
        "Origin": "https://a.example",
        "origin": "https://b.example",
        "X-List": " , foo ,, bar\t",
    ]

    @Test func countsFieldsWhateverTheirCase() {
        #expect(self.headers.count(named: "Origin") == 2)
        #expect(self.headers.count(named: "host") == 1)
        #expect(self.headers.count(named: "Cookie") == 0)
    }

    @Test func singleValueIsTrimmedAndNilWhenMissingOrRepeated() {
        #expect(self.headers.single(named: "HOST") == "example.com")
        #expect(self.headers.single(named: "Origin") == nil)
        #expect(self.headers.single(named: "Sec-WebSocket-Key") == nil)
    }

    @Test func listTokensMatchWholeElementsOnly() {
        #expect(self.headers.listContains("Connection", token: "upgrade"))
        #expect(self.headers.listContains("Upgrade", token: "websocket"))
        #expect(self.headers.listContains("x-list", token: "foo"))
        #expect(self.headers.listContains("x-list", token: "bar"))
        #expect(!self.headers.listContains("x-list", token: ""))
        #expect(!self.headers.listContains("Connection", token: "upgrades"))
        #expect(!self.headers.listContains("Connection", token: "keep"))
        #expect(!self.headers.listContains("Missing", token: "upgrade"))
    }
}
