import FerryCore
import NIOCore

/// The demo chat's bounds. The chat service listens on a plain TCP port anyone who can reach it may
/// use, so everything one client can make it spend (a slot, memory, other members' screens) has a
/// ceiling; tests pass smaller ones.
public struct ChatLimits: Sendable {
    /// Connections at once, named or still choosing a name; one more is told the room is full.
    public var maxMembers = 64
    /// Longest line in bytes, newline excluded; a client that sends a longer one is disconnected.
    public var maxLineBytes = 4096
    /// Longest name in characters, and in UTF-8 bytes (combining marks make characters long).
    public var maxNameCharacters = 24
    public var maxNameBytes = 64
    /// Names a client may try before it is disconnected.
    public var nameAttempts = 5
    /// How long a client may take to give a name; until then it holds a slot and hears nothing.
    public var nameTimeout: TimeAmount = .seconds(60)
    /// Lines a member may send at once, and how many more per second after that; the rest are dropped.
    public var lineBurst = 20
    public var linesPerSecond = 5
    /// Bytes waiting to be written to one member; a member that reads slower than the room talks is
    /// disconnected rather than buffered without end.
    public var maxQueuedBytes = 256 * 1024

    public init() {}
}
