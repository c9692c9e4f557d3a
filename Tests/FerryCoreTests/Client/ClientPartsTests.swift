import NIOCore
import Testing

@testable import FerryCore

extension ClientTests {
    @Suite("Unit: URL, upgrade request and response")
    struct PartsTests {
        @Test("URLs: scheme, host, port, path and query; IPv6 in brackets; defaults per scheme")
        func urls() throws {
            #expect(try WebSocketURL.parse("wss://relay.example.com/ssh") == WebSocketURL(secure: true, host: "relay.example.com", port: 443, path: "/ssh"))
            #expect(try WebSocketURL.parse("ws://127.0.0.1:6080/vnc?a=1") == WebSocketURL(secure: false, host: "127.0.0.1", port: 6080, path: "/vnc", query: "a=1"))
            #expect(try WebSocketURL.parse("WS://[::1]:8080") == WebSocketURL(secure: false, host: "::1", port: 8080, path: "/"))
            #expect(try WebSocketURL.parse("wss://h?x") == WebSocketURL(secure: true, host: "h", port: 443, path: "/", query: "x"))
            #expect(try WebSocketURL.parse("wss://[::1]/p").hostHeader == "[::1]")
            #expect(try WebSocketURL.parse("ws://h:8080/p").hostHeader == "h:8080")
            // What logs and messages show leaves the query out: it may hold a token.
            #expect(try WebSocketURL.parse("wss://h/p?token=secret").description == "wss://h/p")
        }

        @Test("bad URLs name the problem", arguments: [
            ("relay.example.com/ssh", "is not a ws:// or wss:// URL"),
            ("https://relay.example.com/ssh", "is an HTTP URL"),
            ("wss:///ssh", "has no host"),
            ("wss://h:0/", "port '0' is not a number from 1 to 65535"),
            ("wss://h:99999/", "port '99999'"),
            ("wss://::1/", "IPv6 addresses must be in brackets"),
            ("wss://[::1/", "no closing ]"),
            ("wss://h/a b", "must be percent-encoded"),
            ("wss://h/#frag", "#fragment"),
        ])
        func badURLs(text: String, problem: String) {
            #expect(throws: ConfigurationError.self) { try WebSocketURL.parse(text) }
            do {
                _ = try WebSocketURL.parse(text)
            } catch {
                #expect(error.description.contains(problem), "\(error)")
                #expect(error.flag == "URL")
            }
        }

        @Test("the request: the handshake's headers, the token in its carrier, extra headers last")
        func request() throws {
            var options = UpgradeRequestOptions()
            options.token = "tok.en-1"
            options.headers = [HeaderField(name: "X-Trace", value: "7")]
            let request = ClientUpgradeRequest(url: try WebSocketURL.parse("wss://relay.example:8443/ssh?x=1"), options: options, key: "dGhlIHNhbXBsZSBub25jZQ==")
            var buffer = ByteBuffer()
            request.write(into: &buffer)
            #expect(String(buffer: buffer) == """
                GET /ssh?x=1 HTTP/1.1\r
                Host: relay.example:8443\r
                Upgrade: websocket\r
                Connection: Upgrade\r
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
                Sec-WebSocket-Version: 13\r
                Sec-WebSocket-Protocol: binary, bearer.tok.en-1\r
                X-Trace: 7\r
                \r

                """)
            #expect(request.expectedAccept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455's example")

            options.tokenCarrier = .header
            #expect(Self.text(options).contains("\r\nAuthorization: Bearer tok.en-1\r\n"))
            options.tokenCarrier = .cookie
            #expect(Self.text(options).contains("\r\nCookie: token=tok.en-1\r\n"))
            options.tokenCarrier = .query
            options.token = "a/b c"
            #expect(Self.text(options).hasPrefix("GET /p?token=a%2Fb%20c HTTP/1.1\r\n"))
        }

        static func text(_ options: UpgradeRequestOptions) -> String {
            var buffer = ByteBuffer()
            ClientUpgradeRequest(url: WebSocketURL(secure: false, host: "h", port: 80, path: "/p"), options: options).write(into: &buffer)
            return String(buffer: buffer)
        }

        @Test("request checks: tokens each carrier cannot carry, reserved and doubled headers")
        func requestChecks() throws {
            var options = UpgradeRequestOptions()
            options.token = "has space"
            #expect(throws: ConfigurationError.self) { try options.check() }
            options.tokenCarrier = .query
            try options.check()
            options.tokenCarrier = .cookie
            options.token = "a;b"
            #expect(throws: ConfigurationError.self) { try options.check() }

            options = UpgradeRequestOptions()
            options.headers = [HeaderField(name: "Sec-WebSocket-Key", value: "x")]
            #expect(throws: ConfigurationError.self) { try options.check() }
            options.headers = [HeaderField(name: "Authorization", value: "x")]
            options.basicAuth = HeaderField(name: "u", value: "p")
            #expect(throws: ConfigurationError.self) { try options.check() }

            #expect(throws: ConfigurationError.self) { try UpgradeRequestOptions.parseHeader("X-Bad: a\r\nInjected: b") }
            #expect(throws: ConfigurationError.self) { try UpgradeRequestOptions.parseHeader("Bad Name: v") }
            #expect(try UpgradeRequestOptions.parseHeader("X-Ok:   spaced value ") == HeaderField(name: "X-Ok", value: "spaced value"))
        }

        @Test("a 101 is checked: upgrade, connection, accept key, subprotocol offered, no extension")
        func switchingProtocols() throws {
            let request = ClientUpgradeRequest(url: WebSocketURL(secure: false, host: "h", port: 80), options: UpgradeRequestOptions(), key: "dGhlIHNhbXBsZSBub25jZQ==")
            let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: binary"
            #expect(try UpgradeResponseHead.parse(good).checkSwitchingProtocols(for: request) == "binary")
            let bad = [
                good.replacingOccurrences(of: "Upgrade: WebSocket", with: "Upgrade: h2c"),
                good.replacingOccurrences(of: "keep-alive, Upgrade", with: "keep-alive"),
                good.replacingOccurrences(of: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", with: "AAAA"),
                good.replacingOccurrences(of: "Protocol: binary", with: "Protocol: chat"),
                good + "\r\nSec-WebSocket-Extensions: permessage-deflate",
            ]
            for text in bad {
                #expect(throws: ConnectFailure.self) { try UpgradeResponseHead.parse(text).checkSwitchingProtocols(for: request) }
            }
            #expect(throws: ConnectFailure.notWebSocket(reason: "the answer is not HTTP")) { try UpgradeResponseHead.parse("SSH-2.0-OpenSSH_9.2") }
        }

        @Test("failures and ends say what happened, with their exit statuses")
        func wording() {
            #expect(ConnectFailure.refused(status: 403, message: "token not valid for this route").description == "the relay refused the session: 403 token not valid for this route")
            #expect(ConnectFailure.refused(status: 403, message: "x").exitStatus == .refused)
            #expect(ConnectFailure.tlsFailed(address: "h:443", reason: "r").exitStatus == .tlsFailed)
            #expect(ConnectFailure.unreachable(address: "h:443", reason: "connection refused").exitStatus == .couldNotConnect)
            #expect(SessionEnd(cause: .closed(code: 1001, reason: "")).exitStatus == .ended)
            #expect(SessionEnd(cause: .closed(code: nil, reason: "")).exitStatus == .endedAbnormally)
            #expect(SessionEnd(cause: .closed(code: nil, reason: ""), closedLocallyFirst: true).exitStatus == .ended, "our close, answered without a code")
            #expect(SessionEnd(cause: .closed(code: 1008, reason: "token expired")).description == "the relay closed the session: 1008 token expired")
            #expect(Set(ConnectExitStatus.allCases.map(\.rawValue)).count == ConnectExitStatus.allCases.count)
        }
    }
}
