/// The checks that keep an upgrade request well-formed whatever the flags hold: a token each carrier
/// can carry as it is, header names and values without line breaks, no header that the handshake
/// itself owns. A value that could hold a secret is never repeated in the message.
extension UpgradeRequestOptions {
    /// Headers the handshake writes itself; a `--header` cannot replace them.
    static let reservedHeaders: Set<String> = [
        "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
        "sec-websocket-extensions", "sec-websocket-protocol", "content-length", "transfer-encoding",
    ]

    public func check() throws(ConfigurationError) {
        if let token {
            try Self.checkToken(token, carrier: self.tokenCarrier)
        }
        for header in self.headers {
            guard !Self.reservedHeaders.contains(header.name.lowercased()) else {
                throw ConfigurationError(flag: "--header", value: header.name, problem: "is written by the WebSocket handshake itself", expected: "another header; a token goes with --token")
            }
            if header.name.lowercased() == "authorization", self.basicAuth != nil || (self.token != nil && self.tokenCarrier == .header) {
                throw ConfigurationError(flag: "--header", value: header.name, problem: "would be a second Authorization header", expected: "either --header 'Authorization: …' or --basic-auth / --token-in header")
            }
        }
        if self.basicAuth != nil, self.token != nil, self.tokenCarrier == .header {
            throw ConfigurationError(flag: "--token-in", value: "header", problem: "needs the Authorization header, which --basic-auth uses", expected: "--token-in subprotocol, cookie or query with --basic-auth")
        }
        if let origin, origin.isEmpty || !Self.isFieldValue(origin) {
            throw ConfigurationError(flag: "--origin", value: origin, problem: "not an origin", expected: "SCHEME://HOST[:PORT], e.g. https://app.example.com")
        }
    }

    /// Parses `--header 'Name: value'`.
    public static func parseHeader(_ text: String) throws(ConfigurationError) -> HeaderField {
        guard let colon = text.firstIndex(of: ":") else {
            throw ConfigurationError(flag: "--header", value: "", problem: "has no ':' between name and value", expected: "'Name: value', e.g. --header 'X-Request-Id: 42'")
        }
        let name = String(text[..<colon])
        let value = String(text[text.index(after: colon)...].trimmingSpaces)
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
            throw ConfigurationError(flag: "--header", value: name, problem: "is not a header name", expected: "letters, digits and -, e.g. X-Request-Id")
        }
        guard Self.isFieldValue(value) else {
            throw ConfigurationError(flag: "--header", value: name, problem: "the value holds a line break or a control character", expected: "a value on one line")
        }
        return HeaderField(name: name, value: value)
    }

    /// Parses `--basic-auth USER:PASSWORD` (or a file's first line, read by the caller).
    public static func parseBasicAuth(_ text: String, flag: String = "--basic-auth") throws(ConfigurationError) -> HeaderField {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            throw ConfigurationError(flag: flag, value: "", problem: "not USER:PASSWORD", expected: "USER:PASSWORD (a non-empty user without ':'), or @FILE")
        }
        let pair = HeaderField(name: String(text[..<colon]), value: String(text[text.index(after: colon)...]))
        guard Self.isFieldValue(text) else {
            throw ConfigurationError(flag: flag, value: "", problem: "holds a line break or a control character", expected: "USER:PASSWORD on one line")
        }
        return pair
    }

    private static func checkToken(_ token: String, carrier: UpgradeRequestOptions.TokenCarrier) throws(ConfigurationError) {
        guard !token.isEmpty else {
            throw ConfigurationError(flag: "--token", value: "", problem: "is empty", expected: "the token the relay's route checks")
        }
        switch carrier {
        case .subprotocol:
            guard token.utf8.allSatisfy(Self.isTokenByte) else {
                throw ConfigurationError(flag: "--token", value: "", problem: "has characters a subprotocol cannot carry (spaces, quotes, commas, '/', '=', …)", expected: "--token-in header, cookie or query for such a token")
            }
        case .header:
            guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigurationError(flag: "--token", value: "", problem: "has spaces or characters an Authorization header cannot carry", expected: "printable ASCII without spaces")
            }
        case .cookie:
            guard token.utf8.allSatisfy(Self.isCookieByte) else {
                throw ConfigurationError(flag: "--token", value: "", problem: "has characters a cookie cannot carry (spaces, quotes, ',', ';', '\\')", expected: "--token-in header or query for such a token")
            }
        case .query:
            break
        }
    }

    /// RFC 9110 `tchar`: what header names and subprotocols are made of.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// RFC 6265 `cookie-octet`.
    private static func isCookieByte(_ byte: UInt8) -> Bool {
        byte == 0x21 || (0x23...0x2B).contains(byte) || (0x2D...0x3A).contains(byte) || (0x3C...0x5B).contains(byte) || (0x5D...0x7E).contains(byte)
    }

    /// A header value on one line: tabs and visible characters, no CR, LF or other control bytes.
    private static func isFieldValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
