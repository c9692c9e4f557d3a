import NIOCore

/// A command as Redis reads it from clients: an array of bulk strings, so any byte (a space, a CRLF
/// in a token) travels as data and never as protocol.
public struct RESPCommand: Sendable, Equatable {
    public var arguments: [String]

    public init(_ arguments: String...) {
        self.arguments = arguments
    }

    public init(arguments: [String]) {
        self.arguments = arguments
    }

    /// Appends `*N\r\n` and `$LEN\r\nBYTES\r\n` for each argument.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("*\(self.arguments.count)\r\n")
        for argument in self.arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeString("\r\n")
        }
    }

    /// The command's name, for logs and errors (never its arguments: AUTH carries a password, GET a token).
    public var name: String { self.arguments.first?.uppercased() ?? "" }
}
