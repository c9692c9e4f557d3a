import NIOHTTP1

/// Why a handshake is refused: the HTTP status, a one-line body for the client and the log, and any
/// headers the status calls for (426 names the supported version, 405 the allowed method).
public struct HandshakeRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var message: String
    public var headers: HTTPHeaders

    public init(_ status: HTTPResponseStatus, _ message: String, headers: HTTPHeaders = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(self.status.code) \(self.message)" }

    public static func badRequest(_ message: String) -> Self { .init(.badRequest, message) }
    public static func notFound(_ message: String) -> Self { .init(.notFound, message) }
    public static func forbidden(_ message: String) -> Self { .init(.forbidden, message) }
    public static func methodNotAllowed(_ allowed: String = "GET") -> Self {
        .init(.methodNotAllowed, "method not allowed; use \(allowed)", headers: ["Allow": allowed])
    }
    public static let unsupportedVersion = Self(
        .upgradeRequired,
        "unsupported WebSocket version; this server speaks version 13",
        headers: ["Sec-WebSocket-Version": "13"]
    )
    public static let headersTooLarge = Self(.init(statusCode: 431, reasonPhrase: "Request Header Fields Too Large"), "request headers too large")
    public static let tooManyConnections = Self(.serviceUnavailable, "too many connections; try again later")
}
