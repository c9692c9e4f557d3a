/// Ferry's release version: printed by `ferry --version`, logged at start-up and exported as
/// `ferry_build_info{version=…} 1`, so an operator can tell which build answers without a shell on
/// the machine. Bumped by hand at each release (SwiftPM has no build-time version stamp).
public enum FerryVersion {
    public static let current = "0.9.0"
}
