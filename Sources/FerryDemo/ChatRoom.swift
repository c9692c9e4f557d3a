import FerryCore
import NIOConcurrencyHelpers
import NIOCore

/// Who is connected and under which name, and the one way lines reach the others. Every member's
/// handler shares it across event loops, so its state sits behind one lock; writes happen outside it.
final class ChatRoom: Sendable {
    private struct Member {
        let channel: Channel
        /// Nil while the client is still choosing a name: it holds a slot but hears nothing.
        var name: String?
    }

    enum Claim: Equatable {
        /// The name is the member's; `roster` is everyone named, the member included.
        case accepted(roster: [String])
        case taken
    }

    let limits: ChatLimits
    private let members = NIOLockedValueBox<[ObjectIdentifier: Member]>([:])

    init(limits: ChatLimits) {
        self.limits = limits
    }

    /// Takes a slot for a new connection; false when the room is full.
    func admit(_ channel: Channel) -> Bool {
        self.members.withLockedValue { members in
            guard members.count < self.limits.maxMembers else { return false }
            members[ObjectIdentifier(channel)] = Member(channel: channel, name: nil)
            return true
        }
    }

    /// Gives `name` to the member on `channel` unless someone else has it (in any letter case).
    func claim(_ name: String, for channel: Channel) -> Claim {
        self.members.withLockedValue { members in
            let key = ChatName.key(name)
            if members.values.contains(where: { $0.name.map(ChatName.key) == key }) { return .taken }
            members[ObjectIdentifier(channel)]?.name = name
            return .accepted(roster: Self.sortedNames(members))
        }
    }

    /// Frees the slot; returns the member's name if it had one (the others are then told it left).
    func leave(_ channel: Channel) -> String? {
        self.members.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel))?.name }
    }

    /// Everyone named, in alphabetical order.
    var roster: [String] {
        self.members.withLockedValue { Self.sortedNames($0) }
    }

    /// Sends `text` to every named member but `sender`. A member whose unwritten bytes have reached
    /// `maxQueuedBytes` (its channel is no longer writable) is disconnected instead: one client that
    /// does not read must not make the service hold the room's talk for it without end.
    func broadcast(_ text: String, except sender: Channel?) {
        let senderID = sender.map(ObjectIdentifier.init)
        let recipients = self.members.withLockedValue { members in
            members.compactMap { id, member in member.name != nil && id != senderID ? member.channel : nil }
        }
        for channel in recipients {
            if channel.isWritable {
                channel.writeAndFlush(channel.allocator.buffer(string: text), promise: nil)
            } else {
                channel.close(promise: nil)
            }
        }
    }

    private static func sortedNames(_ members: [ObjectIdentifier: Member]) -> [String] {
        members.values.compactMap(\.name).sorted { ChatName.key($0) < ChatName.key($1) }
    }
}
