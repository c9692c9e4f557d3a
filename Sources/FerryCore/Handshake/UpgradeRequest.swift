import NIOHTTP1

/// A request head sorted into what the relay does with it, with RFC 6455 §4.2.1 checked for upgrades.
public enum UpgradeRequest: Sendable, Equatable {
    /// A valid WebSocket opening handshake.
    case upgrade(WebSocketHandshake)
    /// An ordinary HTTP request (no `Upgrade: websocket`).
    case plain
    /// An upgrade request that breaks the rules.
    case rejected(HandshakeRejection)

    /// The subprotocol the relay speaks: raw bytes, binary messages.
    public static let binarySubprotocol = "binary"

    public init(_ head: HTTPRequestHead) {
        if head.version.major == 2 {
            self = Self.sortHTTP2(head)
            return
        }
        guard head.headers.listContains("Upgrade", token: "websocket") else {
            self = .plain
            return
        }
        switch Self.validate(head) {
        case .success(let handshake): self = .upgrade(handshake)
        case .failure(let rejection): self = .rejected(rejection)
        }
    }

    private static func validate(_ head: HTTPRequestHead) -> Result<WebSocketHandshake, HandshakeRejection> {
        guard head.method == .GET else { return .failure(.methodNotAllowed()) }
        guard head.version == .http1_1 else { return .failure(.badRequest("WebSocket handshakes need HTTP/1.1")) }
        guard head.headers.listContains("Connection", token: "upgrade") else {
            return .failure(.badRequest("Connection header must contain 'upgrade'"))
        }
        // RFC 7230 §5.4: a request with no Host, or more than one, gets 400 (RFC 6455 §4.2.1 needs one).
        // The Origin check reads one Origin: two would let a check pass on one and a log show the other.
        guard let host = head.headers.single(named: "Host"), !host.isEmpty else { return .failure(.badRequest("exactly one Host header is required")) }
        guard head.headers.count(named: "Origin") <= 1 else { return .failure(.badRequest("at most one Origin header is allowed")) }
        // RFC 6455 §4.4: a missing or unknown version is answered with the versions the server speaks.
        guard head.headers.single(named: "Sec-WebSocket-Version") == "13" else { return .failure(.unsupportedVersion) }
        guard let key = head.headers.single(named: "Sec-WebSocket-Key"), Self.isValidKey(key) else {
            return .failure(.badRequest("Sec-WebSocket-Key must be one base64-encoded 16-byte value"))
        }
        return Self.chooseSubprotocol(head).map { WebSocketHandshake(offeredSubprotocols: $0.offered, subprotocol: $0.chosen) }
    }

    /// An HTTP/2 stream (RFC 8441 §4): a WebSocket is an extended CONNECT with `:protocol websocket`
    /// and `Sec-WebSocket-Version: 13`, with no key and no `Upgrade`/`Connection` headers (HTTP/2
    /// forbids them). Any other CONNECT is refused: Ferry is not a general HTTP proxy.
    private static func sortHTTP2(_ head: HTTPRequestHead) -> UpgradeRequest {
        let extendedProtocol = head.headers[HTTP2RequestCodec.protocolHeader]
        guard head.method == .CONNECT else {
            return extendedProtocol.isEmpty ? .plain : .rejected(.badRequest(":protocol is only allowed on CONNECT"))
        }
        guard extendedProtocol.count == 1, extendedProtocol[0].lowercased() == "websocket" else {
            return .rejected(HandshakeRejection(.methodNotAllowed, "CONNECT is only served with :protocol websocket (RFC 8441)"))
        }
        guard head.headers["Host"].count == 1, !head.uri.isEmpty else {
            return .rejected(.badRequest("an extended CONNECT needs :authority and :path"))
        }
        guard head.headers["Origin"].count <= 1 else { return .rejected(.badRequest("at most one Origin header is allowed")) }
        let versions = head.headers["Sec-WebSocket-Version"]
        guard versions.count == 1, versions[0].trimmingSpaces == "13" else { return .rejected(.unsupportedVersion) }
        switch Self.chooseSubprotocol(head) {
        case .success(let choice): return .upgrade(WebSocketHandshake(offeredSubprotocols: choice.offered, subprotocol: choice.chosen))
        case .failure(let rejection): return .rejected(rejection)
        }
    }

    /// The subprotocol answered, from those offered (the same rule on HTTP/1.1 and HTTP/2).
    private static func chooseSubprotocol(_ head: HTTPRequestHead) -> Result<(offered: [String], chosen: String?), HandshakeRejection> {
        guard head.headers.contains(name: "Sec-WebSocket-Protocol") else { return .success(([], nil)) }
        let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init)
        // `bearer.TOKEN` entries carry a token, not a protocol: never chosen, never echoed.
        let protocols = offered.filter { !$0.hasPrefix(PresentedToken.subprotocolPrefix) }
        let subprotocol: String?
        if protocols.contains(Self.binarySubprotocol) {
            subprotocol = Self.binarySubprotocol
        } else if !protocols.isEmpty {
            return .failure(.badRequest("no supported subprotocol offered; supported: \(Self.binarySubprotocol), or none"))
        } else if protocols.count != offered.count {
            // A browser fails a handshake whose answer selects none of its offers.
            return .failure(.badRequest("offer 'binary' alongside 'bearer.TOKEN': new WebSocket(url, [\"binary\", \"bearer.\" + token])"))
        } else {
            subprotocol = nil
        }
        return .success((offered, subprotocol))
    }

    /// Base64 of 16 bytes: 22 characters of the alphabet and `==`.
    static func isValidKey(_ key: Substring) -> Bool {
        let bytes = key.utf8
        guard bytes.count == 24, bytes.dropFirst(22).elementsEqual("==".utf8) else { return false }
        return bytes.prefix(22).allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                return true
            default:
                return false
            }
        }
    }
}

/// The parts of a valid opening handshake the rest of the upgrade needs.
public struct WebSocketHandshake: Sendable, Equatable {
    /// Every subprotocol the client offered (later issues read tokens from here).
    public var offeredSubprotocols: [String]
    /// The one the relay answers with, if any.
    public var subprotocol: String?
}

