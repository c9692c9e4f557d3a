import NIOConcurrencyHelpers

/// What a reload may change while the relay runs, read by every handshake as it decides: the route
/// table and the Origin rules, swapped together so a handshake never sees one without the other.
/// Sessions keep what their handshake was given; only new handshakes see a new table.
public final class LiveRouting: Sendable {
    public struct Snapshot: Sendable {
        public var routes: RouteTable
        public var originPolicy: OriginPolicy
    }

    private let box: NIOLockedValueBox<Snapshot>

    public init(routes: RouteTable, originPolicy: OriginPolicy) {
        self.box = NIOLockedValueBox(Snapshot(routes: routes, originPolicy: originPolicy))
    }

    public var current: Snapshot { self.box.withLockedValue { $0 } }

    func replace(with snapshot: Snapshot) {
        self.box.withLockedValue { $0 = snapshot }
    }
}
