/// Something that can be re-read from disk without a restart: certificates now, token files later.
public protocol Reloadable: Sendable {
    /// Re-reads unconditionally (SIGHUP).
    func reload() -> Bool
    /// Re-reads if the files changed since the last read (polling).
    func reloadIfChanged()
}
