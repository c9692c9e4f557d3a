import NIOCore
import NIOHTTP1

/// Where one connection's handshake stands, and the moves it may make. ``HTTPHandshakeHandler`` moves
/// only through ``move(to:)``, which checks each move against ``allows(_:)`` (as TLSify's proxy state
/// does): a move outside the table is a bug, stopped by an assertion in debug builds and answered by
/// closing the connection in release builds rather than by relaying in a state nobody planned for.
enum HandshakeState {
    case awaitingHead
    case readingBody(HTTPRequestHead)
    /// The upgrade decision is under way; reads are held back.
    case deciding
    /// The backend connect is under way, holding a session slot; reads are held back. It ends
    /// within the handshake budget (`budget` answers 504 then) or when the client leaves.
    case connecting(slot: UInt64, attempt: BackendConnectAttempt, budget: Scheduled<Void>)
    /// Answered, upgraded or closed: nothing more happens here.
    case done

    /// The legal moves: head, body, decision, connect (and back to deciding when it ends or is
    /// called off), and `done` from anywhere.
    func allows(_ next: HandshakeState) -> Bool {
        switch (self, next) {
        case (.awaitingHead, .readingBody), (.readingBody, .deciding), (.deciding, .connecting), (.connecting, .deciding):
            return true
        case (_, .done):
            return true
        default:
            return false
        }
    }

    /// Moves to `next` if the table allows it; returns false (and asserts) if not.
    mutating func move(to next: HandshakeState) -> Bool {
        guard self.allows(next) else {
            assertionFailure("illegal handshake move: \(self.name) → \(next.name)")
            return false
        }
        self = next
        return true
    }

    /// While deciding or connecting, the client's reads wait: the session reads again once spliced.
    var holdsReads: Bool {
        switch self {
        case .deciding, .connecting: return true
        case .awaitingHead, .readingBody, .done: return false
        }
    }

    var name: String {
        switch self {
        case .awaitingHead: return "awaitingHead"
        case .readingBody: return "readingBody"
        case .deciding: return "deciding"
        case .connecting: return "connecting"
        case .done: return "done"
        }
    }
}
