/// Static files for browser clients (`--web DIR`).
public struct WebOptions: Sendable, Equatable {
    public var root: String
    /// `X-Content-Type-Options` and a `Content-Security-Policy` on HTML; off with `--web-headers none`.
    public var securityHeaders = true

    public init(root: String, securityHeaders: Bool = true) {
        self.root = root
        self.securityHeaders = securityHeaders
    }
}
